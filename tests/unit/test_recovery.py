"""Recovered stretches merged into a chunk's words: the decoder is scripted, the merge is the transcribe agent's."""

from __future__ import annotations

import numpy as np

from processors.audio import SAMPLE_RATE
from processors.batching import DecodedWord, Window, WindowResult
from processors.recovery import RecoveryOptions
from processors.transcribing import LoadedChunk, transcribe_chunks
from schemas.chunks import ChunkRequested, TimeSpan
from schemas.transcript import TranscriptionOptions


def _result(words: list[tuple[str, float, float]], probability: float = 0.9) -> WindowResult:
    return WindowResult(
        words=[DecodedWord(w, s, e, probability, (1,)) for w, s, e in words],
        language="en",
        language_probability=1.0,
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        compression_ratio=1.2,
        temperature=0.0,
        silent=False,
    )


class ScriptedDecoder:
    """The first call (the chunk's decode) gets `first`, every later one (the retries) `retry`; calls are kept."""

    def __init__(self, first: WindowResult, retry: WindowResult) -> None:
        self.first, self.retry = first, retry
        self.calls: list[list[Window]] = []

    def decode(self, windows: list[Window]) -> list[WindowResult]:
        self.calls.append(windows)
        return [self.first if len(self.calls) == 1 else self.retry for _ in windows]


def _chunk(seconds: float) -> LoadedChunk:
    request = ChunkRequested(
        job_id="job",
        index=0,
        count=1,
        owned=TimeSpan(start=0.0, end=seconds),
        overlap_s=0.5,
        cut_in_speech=False,
        model="base",
        audio_key="job/0",
        spans=[TimeSpan(start=0.0, end=seconds)],
        options=TranscriptionOptions(language="en"),
        duration=seconds,
    )
    return LoadedChunk(request, np.zeros(int(seconds * SAMPLE_RATE), np.float32))


def test_a_sentence_the_decode_skipped_is_recovered_under_words_stretched_over_it_and_none_is_doubled() -> None:
    # 0-2 s "for all time", 2-5 s a sentence Whisper skipped, 5.5-6.3 s "this is it": the alignment stretched
    # "this is" over the skipped sentence. The retry of 2.3-5.2 s hears the sentence and "this" again.
    first = _result(
        [
            ("for", 0.2, 0.6),
            ("all", 0.6, 1.0),
            ("time", 1.0, 2.0),
            ("this", 2.0, 3.6),
            ("is", 3.6, 5.8),
            ("it", 5.8, 6.3),
        ]
    )
    retry = _result(
        [("glue", 0.2, 0.6), ("the", 0.6, 0.8), ("sheet", 0.8, 1.3), ("down", 1.3, 2.4), ("this", 3.3, 3.6)]
    )
    decoder = ScriptedDecoder(first, retry)
    [result] = transcribe_chunks(decoder, [_chunk(7.0)], RecoveryOptions(rounds=1))  # type: ignore[arg-type]
    assert len(decoder.calls) == 2, "the stretch under the over-long words is decoded again"
    assert [w.word for w in result.words].count("this") == 1
    assert {"glue", "the", "sheet", "down"} <= {w.word for w in result.words}
    assert result.recovered_stretches == 1
    assert [w.word for w in result.words][-3:] == ["this", "is", "it"], "the stretched words stay before 'it'"
    times = [t for w in result.words for t in (w.start, w.end)]
    assert times == sorted(times), "words follow each other in time"


def test_a_pause_the_retry_takes_for_a_word_it_hardly_believes_adds_nothing() -> None:
    # jfk.flac as AAC: "ask" timed across the pause before it, and the retry of the pause says "And..." (p 0.24).
    first = _result(
        [("fellow", 0.3, 1.56), ("Americans", 1.56, 2.1), ("ask", 2.1, 3.72), ("not", 3.72, 4.24), ("what", 4.24, 4.6)]
    )
    doubted = ScriptedDecoder(first, _result([("And...", 0.0, 1.42)], probability=0.24))
    [result] = transcribe_chunks(doubted, [_chunk(5.0)], RecoveryOptions(rounds=1))  # type: ignore[arg-type]
    assert len(doubted.calls) == 2, "the pause under the stretched word is decoded again"
    assert [w.word for w in result.words] == ["fellow", "Americans", "ask", "not", "what"]
    assert result.recovered_stretches == 0

    believed = ScriptedDecoder(first, _result([("And", 0.2, 0.5), ("so", 0.5, 0.9)], probability=0.6))
    [result] = transcribe_chunks(believed, [_chunk(5.0)], RecoveryOptions(rounds=1))  # type: ignore[arg-type]
    assert [w.word for w in result.words] == ["fellow", "Americans", "And", "so", "ask", "not", "what"]
    assert result.recovered_stretches == 1
