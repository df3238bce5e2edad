"""processors.speakers: a job's voice windows clustered once, words and segments labelled, known speakers named;
and the stitcher holding a diarized job's segments until its last chunk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from processors.speakers import (
    KnownVoice,
    chunk_voices,
    decode_embedding,
    encode_embedding,
    label_segments,
)
from processors.stitching import stitch
from schemas import ChunkTranscribed, ChunkWord, Diarization, TimeSpan, VoiceWindow, WindowStats
from schemas.state import HeldSegments, StitchWord

RNG = np.random.default_rng(7)
CENTRES = RNG.standard_normal((3, 256)).astype(np.float32)


def _voice(speaker: int) -> npt.NDArray[np.float32]:
    row = CENTRES[speaker] + 0.1 * RNG.standard_normal(256).astype(np.float32)
    unit: npt.NDArray[np.float32] = (row / np.linalg.norm(row)).astype(np.float32)
    return unit


def _windows(start: float, end: float, speaker: int) -> list[VoiceWindow]:
    out, at = [], start
    while at + 1.5 <= end:
        out.append(VoiceWindow(start=at, end=at + 1.5, embedding=encode_embedding(_voice(speaker))))
        at += 0.75
    return out


def _words(start: float, end: float, text: str) -> list[StitchWord]:
    names = text.split()
    step = (end - start) / len(names)
    return [
        StitchWord(word=" " + w, start=start + n * step, end=start + (n + 1) * step - 0.05, probability=0.9)
        for n, w in enumerate(names)
    ]


def _held() -> list[HeldSegments]:
    # One segment crosses the change from speaker 0 to speaker 1 at 10 s; speaker 0 comes back in the next chunk.
    first = HeldSegments(
        job_id="j",
        index=0,
        segments=[_words(0, 6, "one two three four"), _words(6, 14, "five six seven eight nine ten eleven twelve")],
        voices=_windows(0, 10, 0) + _windows(10, 14, 1),
    )
    second = HeldSegments(
        job_id="j", index=1, segments=[_words(15, 21, "back again to the first")], voices=_windows(15, 21, 0)
    )
    return [second, first]  # any order: the chunk index decides


def test_embeddings_survive_the_wire_in_half_precision() -> None:
    row = _voice(0)
    text = encode_embedding(row)
    assert len(text) == 684
    assert np.allclose(decode_embedding(text), row, atol=1e-3)


def test_segments_split_where_the_voice_changes_and_keep_one_name_per_voice() -> None:
    labelled = label_segments(_held(), Diarization(), [], with_words=True)
    segments = labelled.segments
    assert [s.id for s in segments] == list(range(len(segments)))
    assert [(s.speaker, s.text) for s in segments] == [
        ("A", " one two three four"),
        ("A", " five six seven eight"),
        ("B", " nine ten eleven twelve"),
        ("A", " back again to the first"),
    ]
    assert all({w.speaker for w in s.words} == {s.speaker} for s in segments)
    assert label_segments(_held(), Diarization(), [], with_words=True) == labelled, "deterministic"
    bare = label_segments(_held(), Diarization(), [], with_words=False).segments
    assert [s.speaker for s in bare] == [s.speaker for s in segments] and not any(s.words for s in bare)


def test_who_spoke_when_follows_the_voices_and_keeps_to_the_speech() -> None:
    held = _held()
    # The first chunk says where VAD heard speech (a pause from 4 to 5 s); the second does not (a result from
    # before chunks said), so its windows' extent stands for it.
    held[1] = held[1].model_copy(update={"speech": [TimeSpan(start=0.0, end=4.0), TimeSpan(start=5.0, end=14.0)]})
    turns = [(t.speaker, t.start, t.end) for t in label_segments(held, Diarization(), [], with_words=True).turns]
    assert [t[0] for t in turns] == ["A", "A", "B", "A"]
    assert turns[0][1:] == (0.0, 4.0) and turns[1][1] == 5.0, "no turn over the pause"
    assert abs(turns[1][2] - 10.0) <= 0.75 and abs(turns[2][1] - 10.0) <= 0.75 and 13.0 <= turns[2][2] <= 14.0
    assert turns[3][1:] == (15.0, 21.0)
    plain = label_segments(_held(), Diarization(), [], with_words=True).turns
    assert [t.speaker for t in plain] == ["A", "B", "A"] and plain[0].start == 0.0 and plain[-1].end == 21.0


def test_speaker_bounds_reach_the_clustering() -> None:
    one = label_segments(_held(), Diarization(max_speakers=1), [], with_words=True)
    assert {s.speaker for s in one.segments} == {"A"} and len(one.segments) == 3
    assert {t.speaker for t in one.turns} == {"A"}


def test_known_speakers_name_the_voices_like_theirs() -> None:
    known = [KnownVoice("guest", CENTRES[1] / np.linalg.norm(CENTRES[1])), KnownVoice("nobody", _voice(2))]
    labelled = label_segments(_held(), Diarization(), known, with_words=True)
    assert [s.speaker for s in labelled.segments] == ["A", "A", "guest", "A"], "an unmatched reference names nobody"
    assert [t.speaker for t in labelled.turns] == ["A", "guest", "A"]


def test_a_job_without_speech_long_enough_to_embed_is_one_speaker() -> None:
    held = [HeldSegments(job_id="j", index=0, segments=[_words(0, 1, "hi")], voices=[])]
    labelled = label_segments(held, Diarization(), [], with_words=True)
    assert [s.speaker for s in labelled.segments] == ["A"] and labelled.turns == []
    heard = [held[0].model_copy(update={"speech": [TimeSpan(start=0.1, end=0.9)]})]
    turns = label_segments(heard, Diarization(), [], with_words=True).turns
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.1, 0.9, "A")], "its speech is that speaker's"


class _Echo:
    """An embedder that hands back the first samples of each stretch, to see which audio each window got."""

    name = "echo"
    dimensions = 4

    def embed(self, stretches: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        return np.stack([s[:4] for s in stretches]).astype(np.float32)


def test_chunk_windows_cover_only_the_owned_speech_and_read_the_right_audio() -> None:
    spans = [(10.0, 14.0), (20.0, 22.0)]  # packed back to back: 6 s of audio
    audio = np.concatenate([np.linspace(10, 14, 64_000, endpoint=False), np.linspace(20, 22, 32_000, endpoint=False)])
    windows = chunk_voices(audio.astype(np.float32), spans, TimeSpan(start=11.0, end=21.0), _Echo())
    assert windows[0].start == 11.0 and windows[-1].end == 21.0
    assert all(11.0 <= w.start < w.end <= 21.0 for w in windows)
    assert not any(w.start < 20.0 < w.end for w in windows), "no window spans the gap between two spans"
    for w in windows:
        assert abs(float(decode_embedding(w.embedding)[0]) - w.start) < 0.01, "each window reads its own audio"


def _result(index: int, count: int, words: list[str], start: float) -> ChunkTranscribed:
    stats = WindowStats(seek=0, avg_logprob=-0.1, no_speech_prob=0.0, compression_ratio=1.0, temperature=0.0)
    return ChunkTranscribed(
        job_id="j",
        index=index,
        count=count,
        owned=TimeSpan(start=start, end=start + 10),
        words=[
            ChunkWord(word=f" {w}.", start=start + n, end=start + n + 0.5, probability=0.9) for n, w in enumerate(words)
        ],
        windows=[stats],
        language="en",
        duration=20.0,
        diarization=Diarization(),
        voices=_windows(start, start + 10, index),
    )


def test_the_stitcher_holds_a_diarized_jobs_segments_until_the_last_chunk() -> None:
    later = _result(1, 2, ["three", "four"], 10.0)
    step = stitch(None, later, lambda index: None)
    assert step.park is later and not step.held and not step.segments
    step = stitch(step.state, _result(0, 2, ["one", "two"], 0.0), lambda index: later)
    assert step.completed and not step.segments, "the stitch agent labels and sends them"
    assert [h.index for h in step.held] == [0, 1]
    assert [[w.word for g in h.segments for w in g] for h in step.held] == [[" one.", " two."], [" three.", " four."]]
    assert step.held[1].voices == later.voices and step.state.diarization == Diarization()
