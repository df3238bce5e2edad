"""Stitching chunk results into one transcript: every word once, in order, segments emitted as soon as final.

Pure functions over `StitchState`; the stitch agent loads the state from its table, calls `stitch()`, sends what
it returns and stores the new state. Results may arrive in any order and more than once: a result for a chunk
already merged or parked changes nothing, and a result that arrives early is parked until every earlier chunk
is merged.

Each chunk answers for the words whose middle falls in its `owned` span. Where a cut falls inside speech, both
chunks around it also heard the overlap zone; there the two word sequences are aligned (same word at nearly the
same time, or different spellings of one word covering the same time) and each aligned word is kept once, from the
chunk it lies deeper inside. Words only one side heard are kept too, so a word one decode skipped is not lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from processors.segmenting import segment_words, to_segment
from schemas import JobError, Segment
from schemas.chunks import ChunkFailed, ChunkTranscribed, TimeSpan, WindowStats
from schemas.state import EdgeWord, HeldSegments, StitchState, StitchWord

PAIR_TOLERANCE_S = 0.5
"""Two words with the same text whose middles are this close are one spoken word heard by both chunks."""
SAME_TIME_SHARE = 0.5
"""Two words with different text that share this much of the shorter one's time are one word heard two ways."""


@dataclass
class StitchStep:
    """What to do after one chunk result: send `segments` and the status, then store the state and parked results."""

    state: StitchState
    segments: list[Segment] = field(default_factory=list)
    changed: bool = True
    """False for a result already merged, parked or arriving after the job finished."""
    park: ChunkTranscribed | None = None
    """A result that came early: store it until the chunks before it are merged."""
    unpark: list[int] = field(default_factory=list)
    """Parked results merged by this step (or made moot by a failure): delete them."""
    held: list[HeldSegments] = field(default_factory=list)
    """A holding job's segments (and voices) from the chunks merged by this step: store them until the last."""
    completed: bool = False
    """Every chunk is merged. A holding job's segments are all held: label them and send them first (or hand
    them to the language-model steps)."""
    error: JobError | None = None
    """Set when this step failed the job."""


def new_state(result: ChunkTranscribed | ChunkFailed) -> StitchState:
    transcribed = result if isinstance(result, ChunkTranscribed) else None
    return StitchState(
        job_id=result.job_id,
        count=result.count,
        duration=transcribed.duration if transcribed else result.owned.end,
        model=result.model,
        word_timestamps=transcribed.word_timestamps if transcribed else True,
        diarization=transcribed.diarization if transcribed else None,
        postprocess=transcribed.postprocess if transcribed else [],
    )


def stitch(
    state: StitchState | None,
    result: ChunkTranscribed | ChunkFailed,
    parked: Callable[[int], ChunkTranscribed | None],
) -> StitchStep:
    """Apply one result. `parked(i)` returns the stored result of chunk i, which `state.parked` says exists."""
    current = (state or new_state(result)).model_copy(deep=True)
    index = result.index
    if current.finished or index < current.next_index or index in current.parked or index >= current.count:
        return StitchStep(state=current, changed=False)
    if isinstance(result, ChunkFailed):
        unpark = list(current.parked)
        current.finished, current.parked, current.tail, current.edge = True, [], [], []
        return StitchStep(state=current, unpark=unpark, error=result.error)
    current.chunks_done += 1
    current.audio_seconds_done = round(current.audio_seconds_done + result.owned.duration, 3)
    current.recovered_stretches += result.recovered_stretches
    if index > current.next_index:
        current.parked = sorted([*current.parked, index])
        return StitchStep(state=current, park=result)
    step = StitchStep(state=current)
    _merge(current, result, step)
    while current.next_index in current.parked:
        waiting = current.next_index
        stored = parked(waiting)
        if stored is None:  # a parked result that was lost: wait for its redelivery instead of skipping words
            break
        current.parked.remove(waiting)
        step.unpark.append(waiting)
        _merge(current, stored, step)
    if current.next_index >= current.count:
        current.finished, current.tail, current.edge = True, [], []
        step.completed = True
    return step


def _merge(state: StitchState, result: ChunkTranscribed, step: StitchStep) -> None:
    words = stitch_words(result)
    kept, edge = merge_words(
        state.edge, words, owned=result.owned, overlap=result.overlap_s, paired=result.cut_in_speech
    )
    if result.index == 0 or state.language is None:
        state.language = result.language
        state.language_probability = result.language_probability
    final = result.index == state.count - 1
    split = segment_words(state.tail, kept, horizon=result.owned.end, final=final)
    if state.holds:
        step.held.append(
            HeldSegments(
                job_id=state.job_id,
                index=result.index,
                segments=split.closed,
                voices=result.voices,
                voice_model=result.voice_model,
                speech=result.speech,
            )
        )
    else:
        for group in split.closed:
            step.segments.append(to_segment(state.segments_emitted, group, with_words=state.word_timestamps))
            state.segments_emitted += 1
    state.tail = split.tail
    state.edge = edge
    state.next_index = result.index + 1


def stitch_words(result: ChunkTranscribed) -> list[StitchWord]:
    """The result's words in time order, each carrying the scores of its window."""
    fallback = WindowStats(seek=0, avg_logprob=0.0, no_speech_prob=0.0, compression_ratio=0.0, temperature=0.0)
    out = []
    for w in sorted(result.words, key=lambda w: (w.start + w.end) / 2):
        stats = result.windows[w.window] if w.window < len(result.windows) else fallback
        out.append(
            StitchWord(
                word=w.word,
                start=w.start,
                end=max(w.end, w.start),
                probability=w.probability,
                tokens=w.tokens,
                seek=stats.seek,
                avg_logprob=stats.avg_logprob,
                no_speech_prob=stats.no_speech_prob,
                temperature=stats.temperature,
            )
        )
    return out


def merge_words(
    edge: Sequence[EdgeWord],
    words: Sequence[StitchWord],
    *,
    owned: TimeSpan,
    overlap: float,
    paired: bool = True,
) -> tuple[list[StitchWord], list[EdgeWord]]:
    """The words to append after what is already out, and this chunk's own edge for the next cut.

    `edge` holds the previous chunk's words around this chunk's start cut, each marked kept or not; `words` are
    this chunk's, in time order. `paired`: the cut is inside speech, so both sides may hold the same words; at a
    cut in silence they cannot, and every word of either side that is not out yet is kept.
    """
    cut = owned.start
    inside = [w for w in words if w.middle < owned.end]
    zone = [w for w in inside if w.middle < cut + overlap]
    rest = [w for w in inside if w.middle >= cut + overlap]
    elements = _align(edge, zone) if paired else _unpaired(edge, zone)
    last_kept = max((n for n, (left, _) in enumerate(elements) if left is not None and edge[left].kept), default=-1)
    out: list[StitchWord] = []
    for left, right in elements[last_kept + 1 :]:
        if left is not None and right is not None:
            both = (edge[left].middle + zone[right].middle) / 2
            out.append(_plain(edge[left]) if both < cut else zone[right])
        elif left is not None:
            out.append(_plain(edge[left]))
        elif right is not None:
            out.append(zone[right])
    out.extend(rest)
    # Every word of this chunk before its end cut is now out, or stands for one that is.
    new_edge = [EdgeWord(**w.model_dump(), kept=w.middle < owned.end) for w in words if w.middle >= owned.end - overlap]
    return out, new_edge


def _plain(word: EdgeWord) -> StitchWord:
    return StitchWord(**word.model_dump(exclude={"kept"}))


def same_word(left: str, right: str) -> bool:
    """Two spellings of one word as Whisper writes it: case, spacing and punctuation aside."""
    return _normal(left) == _normal(right)


def _normal(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _affinity(left: StitchWord, right: StitchWord) -> int:
    """2 for the same word at the same time, 1 for two spellings of one word, 0 for different words."""
    if same_word(left.word, right.word) and abs(left.middle - right.middle) <= PAIR_TOLERANCE_S:
        return 2
    shared = min(left.end, right.end) - max(left.start, right.start)
    shorter = min(left.end - left.start, right.end - right.start)
    if shorter > 0 and shared / shorter >= SAME_TIME_SHARE:
        return 1
    return 0


def _align(left: Sequence[StitchWord], right: Sequence[StitchWord]) -> list[tuple[int | None, int | None]]:
    """An order-preserving alignment that pairs as many words as it can (a small LCS over the overlap zone).

    Between two pairs, the words only one side has come in time order.
    """
    n, m = len(left), len(right)
    if not n or not m:
        return [(i, None) for i in range(n)] + [(None, j) for j in range(m)]
    affinity = [[_affinity(a, b) for b in right] for a in left]
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            best = max(score[i - 1][j], score[i][j - 1])
            if affinity[i - 1][j - 1]:
                best = max(best, score[i - 1][j - 1] + affinity[i - 1][j - 1])
            score[i][j] = best
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i and j:
        bonus = affinity[i - 1][j - 1]
        if bonus and score[i][j] == score[i - 1][j - 1] + bonus:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif score[i][j] == score[i - 1][j]:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    pairs.extend((k, None) for k in range(i - 1, -1, -1))
    pairs.extend((None, k) for k in range(j - 1, -1, -1))
    pairs.reverse()
    return _order_unpaired(pairs, left, right)


def _unpaired(left: Sequence[StitchWord], right: Sequence[StitchWord]) -> list[tuple[int | None, int | None]]:
    elements: list[tuple[int | None, int | None]] = [(i, None) for i in range(len(left))]
    return _order_unpaired(elements + [(None, j) for j in range(len(right))], left, right)


def _order_unpaired(
    pairs: list[tuple[int | None, int | None]], left: Sequence[StitchWord], right: Sequence[StitchWord]
) -> list[tuple[int | None, int | None]]:
    def middle(element: tuple[int | None, int | None]) -> float:
        a, b = element
        return left[a].middle if a is not None else right[b].middle if b is not None else 0.0

    ordered: list[tuple[int | None, int | None]] = []
    run: list[tuple[int | None, int | None]] = []
    for element in pairs:
        if element[0] is not None and element[1] is not None:
            ordered.extend(sorted(run, key=middle))
            run = []
            ordered.append(element)
        else:
            run.append(element)
    ordered.extend(sorted(run, key=middle))
    return ordered
