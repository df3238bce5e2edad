"""Transcript writers: pure functions from a `Transcript` to the body of each response format."""

from __future__ import annotations

from enum import StrEnum

from schemas import (
    Segment,
    Task,
    Transcript,
    TranscriptionJson,
    TranscriptionVerboseJson,
    UsageDuration,
    language_name,
)
from schemas.openai import TranscriptionSegment, TranscriptionWord


class ResponseFormat(StrEnum):
    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"
    VERBOSE_JSON = "verbose_json"


MEDIA_TYPES = {
    ResponseFormat.JSON: "application/json",
    ResponseFormat.VERBOSE_JSON: "application/json",
    ResponseFormat.TEXT: "text/plain; charset=utf-8",
    ResponseFormat.SRT: "application/x-subrip; charset=utf-8",
    ResponseFormat.VTT: "text/vtt; charset=utf-8",
}


def timestamp(seconds: float, *, decimal: str) -> str:
    """`HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT); hours are not wrapped at 24."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: list[Segment]) -> list[tuple[float, float, str]]:
    """Subtitle players reject empty cues, so segments without text are left out."""
    return [(s.start, max(s.end, s.start), text) for s in segments if (text := s.text.strip())]


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{n}\n{timestamp(start, decimal=',')} --> {timestamp(end, decimal=',')}\n{text}\n"
        for n, (start, end, text) in enumerate(_cues(transcript.segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    blocks = [
        f"{timestamp(start, decimal='.')} --> {timestamp(end, decimal='.')}\n{text}\n"
        for start, end, text in _cues(transcript.segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


class Granularity(StrEnum):
    WORD = "word"
    SEGMENT = "segment"


def to_verbose(
    transcript: Transcript, *, granularities: frozenset[Granularity] = frozenset({Granularity.SEGMENT})
) -> TranscriptionVerboseJson:
    segments = None
    if Granularity.SEGMENT in granularities:
        segments = [
            TranscriptionSegment.model_validate(s.model_dump(include=_SEGMENT_FIELDS)) for s in transcript.segments
        ]
    words = None
    if Granularity.WORD in granularities:
        words = [TranscriptionWord(word=w.word, start=w.start, end=w.end) for w in transcript.words]
    duration = transcript.duration or 0.0
    return TranscriptionVerboseJson(
        task=transcript.task.value,
        # OpenAI reports the output language: always English for translations.
        language="english" if transcript.task is Task.TRANSLATE else language_name(transcript.language),
        duration=duration,
        text=transcript.text,
        segments=segments,
        words=words,
        usage=UsageDuration(seconds=duration),
    )


_SEGMENT_FIELDS = set(TranscriptionSegment.model_fields)


def render(
    transcript: Transcript,
    fmt: ResponseFormat,
    *,
    granularities: frozenset[Granularity] = frozenset({Granularity.SEGMENT}),
) -> str:
    """The response body for `fmt`, as text (JSON formats serialised)."""
    if fmt is ResponseFormat.TEXT:
        return transcript.text + "\n"
    if fmt is ResponseFormat.SRT:
        return to_srt(transcript)
    if fmt is ResponseFormat.VTT:
        return to_vtt(transcript)
    if fmt is ResponseFormat.VERBOSE_JSON:
        return to_verbose(transcript, granularities=granularities).model_dump_json(exclude_none=True)
    usage = UsageDuration(seconds=transcript.duration or 0.0)
    return TranscriptionJson(text=transcript.text, usage=usage).model_dump_json()
