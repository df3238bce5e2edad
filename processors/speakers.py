"""Speakers for a whole job: every chunk's voice windows clustered together, then words and segments labelled.

A diarized job is transcribed in chunks like any other, each chunk embedding the voice windows of the speech it
owns (`chunk_voices`, on the worker that decodes it). Speaker identity only exists across the whole recording, so
the stitcher holds a diarized job's segments until its last chunk is merged and then calls `label_segments` once,
with every window of the job: speaker "A" is the same voice at minute 1 and minute 90, whichever worker heard it.
Known speakers (a name and a short reference recording each) take the clusters whose voice is closest to theirs.

Pure and deterministic: the same held chunks give the same segments, so a stitcher that dies while emitting them
sends the same segments again after a restart.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ingest.storage import ObjectStore, StorageError
from processors.audio import SAMPLE_RATE, UndecodableAudio, decode_audio
from processors.diarization import (
    VoiceTurn,
    assign_speakers,
    chunk_windows,
    cluster,
    speaker_name,
    speaker_turns,
)
from processors.diarization import speech_windows as windows_over
from processors.segmenting import to_segment
from processors.speech import SpeechOptions, find_speech
from processors.timeline import within
from processors.voices import LEGACY_VOICE_MODEL, VoiceEmbedder, calibration
from schemas import Segment
from schemas.chunks import TimeSpan, VoiceWindow
from schemas.state import HeldSegments, StitchWord
from schemas.transcript import Diarization, KnownSpeaker, SpeakerTurn

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

MIN_TURN_S = 0.01
"""Slivers where a turn's edge grazes a stretch of speech are no turn."""

REFERENCE_MAX_S = 30.0
"""The API accepts references of 2 to 10 s; anything much longer is not a reference."""


def encode_embedding(row: FloatArray) -> str:
    """Half precision, little-endian, base64: 256 dimensions in 684 characters."""
    return base64.b64encode(np.asarray(row, "<f2").tobytes()).decode()


def decode_embedding(text: str) -> FloatArray:
    return np.frombuffer(base64.b64decode(text), "<f2").astype(np.float32)


def chunk_voices(
    audio: FloatArray, spans: Sequence[tuple[float, float]], owned: TimeSpan, embedder: VoiceEmbedder
) -> list[VoiceWindow]:
    """Embedded windows over the speech of a chunk's packed `audio` (its `spans` back to back) that falls in
    `owned`: the chunks of a job own disjoint parts of the recording, so each window is embedded once."""
    windows, stretches = chunk_windows(audio, spans, owned.start, owned.end)
    if not windows:
        return []
    rows = embedder.embed(stretches)
    return [
        VoiceWindow(start=start, end=end, embedding=encode_embedding(row))
        for (start, end), row in zip(windows, rows, strict=True)
    ]


def diarize(audio: FloatArray, embedder: VoiceEmbedder) -> list[VoiceTurn]:
    """Who speaks when in a whole recording of 16 kHz mono: what a diarized job's chunks and stitcher do together,
    in one call (the benchmarks and tests score it against reference turns)."""
    regions = find_speech(audio, SpeechOptions())
    windows = windows_over([(r.voiced[0] / SAMPLE_RATE, r.voiced[1] / SAMPLE_RATE) for r in regions])
    if not windows:
        return []
    embeddings = embedder.embed([audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in windows])
    calibrated = calibration(embedder.name)
    labels = cluster(embeddings, threshold=calibrated.threshold, min_windows=calibrated.min_windows)
    return speaker_turns(windows, labels)


def reference_voice(audio: FloatArray, embedder: VoiceEmbedder) -> FloatArray:
    """One normalised voice from a known speaker's reference recording (its windows averaged)."""
    duration = audio.size / SAMPLE_RATE
    rows = embedder.embed(
        [audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in windows_over([(0, duration)])]
    )
    mean = rows.mean(axis=0)
    voice: FloatArray = (mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32)
    return voice


@dataclass(frozen=True)
class KnownVoice:
    name: str
    voice: FloatArray


def known_voices(
    store: ObjectStore, speakers: Sequence[KnownSpeaker], embedder: VoiceEmbedder, scratch_dir: Path
) -> list[KnownVoice]:
    """The references' voices; a reference that cannot be read is left out (its speaker gets a letter)."""
    out = []
    for speaker in speakers:
        with tempfile.TemporaryDirectory(dir=scratch_dir) as folder:
            path = Path(folder) / "reference"
            try:
                store.download(speaker.audio_key, path)
                audio = decode_audio(path, max_seconds=REFERENCE_MAX_S)
            except (StorageError, UndecodableAudio) as e:
                log.warning("the reference of known speaker %r cannot be used: %s", speaker.name, e)
                continue
        out.append(KnownVoice(speaker.name, reference_voice(audio, embedder)))
    return out


def held_groups(held: Sequence[HeldSegments]) -> list[list[StitchWord]]:
    """The words of each held segment, in transcript order (chunk by chunk)."""
    return [group for h in sorted(held, key=lambda h: h.index) for group in h.segments]


@dataclass(frozen=True)
class Labelled:
    segments: list[Segment]
    """The job's segments, in order and numbered from 0, split where the speaker changes, each word and segment
    with its speaker."""
    turns: list[SpeakerTurn]
    """Who spoke when, from the voice windows alone, kept to the speech VAD heard, with the same names."""


def label_segments(
    held: Sequence[HeldSegments], options: Diarization, known: Sequence[KnownVoice], *, with_words: bool
) -> Labelled:
    """The job's speakers, found from all of its voice windows at once, on its segments and as turns."""
    windows = sorted((w for h in held for w in h.voices), key=lambda w: (w.start, w.end))
    groups = held_groups(held)
    words = [w for group in groups for w in group]
    if not words:
        return Labelled([], [])
    turns: list[SpeakerTurn] = []
    if windows:
        calibrated = calibration(voice_model(held) or LEGACY_VOICE_MODEL)
        embeddings = np.stack([decode_embedding(w.embedding) for w in windows])
        labels = cluster(
            embeddings,
            threshold=calibrated.threshold,
            min_windows=calibrated.min_windows,
            min_speakers=options.min_speakers,
            max_speakers=options.max_speakers,
        )
        voiced = speaker_turns([(w.start, w.end) for w in windows], labels)
        clusters = _smoothed(assign_speakers([(w.start, w.end) for w in words], voiced))
        names = _names(embeddings, labels, known, _first_seen(clusters), calibrated.known_match)
        speakers = [names[c] if c is not None else None for c in clusters]
        speech = _speech(held)
        turns = [
            SpeakerTurn(start=round(lo, 3), end=round(hi, 3), speaker=names[turn.speaker])
            for turn in voiced
            for lo, hi in within(speech, turn.start, turn.end)
            if hi - lo >= MIN_TURN_S
        ]
    else:  # no speech long enough to embed: one unnamed speaker
        speakers = [speaker_name(0)] * len(words)
        turns = [SpeakerTurn(start=round(lo, 3), end=round(hi, 3), speaker=speakers[0]) for lo, hi in _speech(held)]
    out: list[Segment] = []
    at = 0
    for group in groups:
        for part, speaker in _runs(group, speakers[at : at + len(group)]):
            segment = to_segment(len(out), part, with_words=with_words)
            out.append(
                segment.model_copy(
                    update={
                        "speaker": speaker,
                        "words": [w.model_copy(update={"speaker": speaker}) for w in segment.words],
                    }
                )
            )
        at += len(group)
    return Labelled(out, turns)


def _speech(held: Sequence[HeldSegments]) -> list[tuple[float, float]]:
    """Where VAD heard speech in the job, in order: each chunk's, or its windows' extent for a chunk that did not
    say (a result from before chunks did). Windows span VAD's padding and the short pauses a chunk keeps, and a
    turn made of them would too: 13 points of false alarm on the benchmark's recording of many voices."""
    spans = [(s.start, s.end) for h in held for s in h.speech] + [
        (w.start, w.end) for h in held if not h.speech for w in h.voices
    ]
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def voice_model(held: Sequence[HeldSegments]) -> str | None:
    """The model that embedded the job's voices (None: no chunk had speech to embed); raises `ValueError` when its
    chunks were embedded by different models (workers configured differently), whose embeddings do not compare."""
    models = {h.voice_model or LEGACY_VOICE_MODEL for h in held if h.voices}
    if len(models) > 1:
        raise ValueError(f"the job's chunks were embedded by different voice models: {sorted(models)}")
    return models.pop() if models else None


def _first_seen(clusters: Sequence[int | None]) -> list[int]:
    return list(dict.fromkeys(c for c in clusters if c is not None))


def _names(
    embeddings: FloatArray,
    labels: npt.NDArray[np.int64],
    known: Sequence[KnownVoice],
    order: Sequence[int],
    known_match: float,
) -> dict[int, str]:
    """Known speakers take the clusters most like them (best pair first); the other clusters are "A", "B", … in
    `order` (of first words: a stray window early in the recording does not make its cluster "A")."""
    count = int(labels.max()) + 1 if labels.size else 0
    names: dict[int, str] = {}
    if known and count:
        centres = np.stack([embeddings[labels == n].mean(axis=0) for n in range(count)])
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
        similarity = centres @ np.stack([k.voice for k in known]).T
        pairs = sorted(((float(similarity[c, k]), c, k) for c in order for k in range(len(known))), reverse=True)
        taken: set[int] = set()
        for score, c, k in pairs:
            if score < known_match:
                break
            if c not in names and k not in taken:
                names[c] = known[k].name
                taken.add(k)
    letters = iter(range(count))
    for n in [*order, *range(count)]:
        if n not in names:
            names[n] = speaker_name(next(letters))
    return names


def _smoothed(speakers: list[int | None]) -> list[int | None]:
    """A single word between two words of one other speaker is that speaker's: a 1.5 s window cannot place a
    change of voice inside a word or two."""
    out = list(speakers)
    for n in range(1, len(out) - 1):
        if out[n - 1] == out[n + 1] != out[n]:
            out[n] = out[n - 1]
    return out


def _runs(group: Sequence[StitchWord], speakers: Sequence[str | None]) -> list[tuple[list[StitchWord], str | None]]:
    runs: list[tuple[list[StitchWord], str | None]] = []
    for word, speaker in zip(group, speakers, strict=True):
        if runs and runs[-1][1] == speaker:
            runs[-1][0].append(word)
        else:
            runs.append(([word], speaker))
    return runs
