"""VAD with a second look at long silences, and levelling, on real recordings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from processors.audio import SAMPLE_RATE, decode_audio
from processors.recovery import RecoveryOptions, clip, uncovered
from processors.speech import (
    FRAME,
    PIECE_FRAMES,
    Region,
    SpeechOptions,
    find_speech,
    level_speech,
    piecewise_probabilities,
    speech_probabilities,
)
from processors.timeline import PackedTimeline
from tests.support.audio import shared


def _dbfs(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(samples.astype(np.float64) ** 2) + 1e-12))


def _covered(regions: list[Region], lo: int, hi: int) -> float:
    mask = np.zeros(hi - lo, bool)
    for r in regions:
        mask[max(0, r.start - lo) : max(0, min(hi, r.end) - lo)] = True
    return float(mask.mean())


@pytest.fixture(scope="module")
def long_file() -> tuple[np.ndarray, int, int]:
    """Eleven recordings back to back, then one that Silero, deep into the file, partly takes for silence."""
    names = [
        "jfk.flac",
        "librispeech_dev-clean_1272-128104-0000.wav",
        "librispeech_test-clean_1188-133604-0000.flac",
        "librispeech_test-clean_1284-1180-0000.flac",
        "librispeech_test-clean_237-126133-0000.flac",
        "librispeech_test-clean_672-122797-0000.flac",
        "librispeech_367-293981-0002.flac",
        "ami_ES2011a_headset0_40-46s.wav",
        "ljspeech_LJ001-0001.wav",
        "mfa_acoustic_corpus.wav",
    ]
    pause = np.zeros(int(0.8 * SAMPLE_RATE), np.float32)
    parts = [p for name in names for p in (decode_audio(shared(name)), pause)]
    start = sum(p.size for p in parts)
    cold = decode_audio(shared("mfa_cold_corpus.wav"))
    return np.concatenate([*parts, cold]), start, start + cold.size


def test_long_silences_are_checked_again(long_file: tuple[np.ndarray, int, int]) -> None:
    audio, lo, hi = long_file
    once = find_speech(audio, SpeechOptions(recheck_gap_s=10_000))
    twice = find_speech(audio)
    alone = find_speech(audio[lo:hi])
    assert _covered(alone, 0, hi - lo) > 0.9
    assert _covered(once, lo, hi) < 0.75, "the effect this guards against is gone: revisit the recheck"
    assert _covered(twice, lo, hi) > 0.8
    assert all(a.end <= b.start for a, b in itertools.pairwise(twice))


def test_vad_leaves_the_audio_it_hears_untouched(long_file: tuple[np.ndarray, int, int]) -> None:
    # Whole frames, as a live session's VAD passes and the pieces of a long recording are: faster-whisper's VAD
    # zeroes the last 64 samples of the array it is given.
    audio, _, _ = long_file
    heard = audio[: 40 * FRAME * 100].copy()
    before = heard.copy()
    speech_probabilities(heard)
    find_speech(heard)
    assert np.array_equal(heard, before)


def test_a_long_recording_is_heard_in_pieces_alike_on_any_number_of_threads(
    long_file: tuple[np.ndarray, int, int],
) -> None:
    audio, _, _ = long_file
    assert audio.size > 2 * PIECE_FRAMES * FRAME
    one = piecewise_probabilities(audio, threads=1)
    assert one.size == -(-audio.size // FRAME)
    assert np.array_equal(one, piecewise_probabilities(audio, threads=3))
    assert find_speech(audio, SpeechOptions(threads=1)) == find_speech(audio, SpeechOptions(threads=4))


def test_levelling_brings_a_quiet_voice_up_to_its_neighbours() -> None:
    loud = decode_audio(shared("jfk.flac"))
    quiet = decode_audio(shared("fleurs_en_006.ogg"))  # about -59 dBFS
    gap = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([loud, gap, quiet])
    regions = find_speech(audio)
    levelled = level_speech(audio, regions, target_dbfs=-20.0)
    start = loud.size + gap.size
    assert _dbfs(audio[start:]) < -50
    assert abs(_dbfs(levelled[start:]) - _dbfs(levelled[: loud.size])) < 6
    assert np.max(np.abs(levelled)) <= 1.0


def test_uncovered_speech_is_found_between_words() -> None:
    options = RecoveryOptions(min_stretch_s=1.0, word_margin_s=0.3)
    speech = [(0.0, 10.0), (12.0, 13.0)]
    words = [(0.5, 1.0), (1.2, 1.5), (6.0, 6.4)]
    assert uncovered(speech, words, options) == [(1.8, 5.7), (6.7, 10.0), (12.0, 13.0)]
    assert clip([(0.0, 5.0), (6.0, 9.0)], 4.0, 7.0) == [(4.0, 5.0), (6.0, 7.0)]


def test_a_word_stretched_over_skipped_speech_does_not_cover_it() -> None:
    # What Whisper's alignment gave on a long recording: a sentence in another voice got no words, and "is" of
    # the next sentence was timed across it.
    options = RecoveryOptions(min_stretch_s=1.0, word_margin_s=0.3, max_word_s=1.5)
    speech = [(246.0, 262.86)]
    words = [(258.16, 258.36), (258.36, 258.84), (258.84, 260.52), (260.52, 264.91)]
    assert uncovered(speech, words, options) == [(246.0, 257.86), (259.14, 262.86)]
    assert uncovered(speech, words, RecoveryOptions(max_word_s=5.0)) == [(246.0, 257.86)]


def test_packed_times_map_to_the_recording_and_back() -> None:
    timeline = PackedTimeline([(10.0, 12.0), (20.0, 21.0)])
    assert timeline.length == 3.0
    assert timeline.to_recording(0.5) == 10.5 and timeline.to_recording(2.5) == 20.5
    assert timeline.to_recording(9.0) == 21.0
    assert timeline.to_packed(20.5) == 2.5 and timeline.to_packed(15.0) == 2.0
