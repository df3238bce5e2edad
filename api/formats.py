"""Transcript writers: pure functions from a `Transcript` to the body of each response format."""

from __future__ import annotations

from enum import StrEnum

from schemas import (
    Segment,
    SpeakerTurn,
    Task,
    Transcript,
    TranscriptionDiarizedJson,
    TranscriptionDiarizedSegment,
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
    DIARIZED_JSON = "diarized_json"


class TranslationFormat(StrEnum):
    """A translation has no speakers: OpenAI's translation formats."""

    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"
    VERBOSE_JSON = "verbose_json"


MEDIA_TYPES = {
    ResponseFormat.JSON: "application/json",
    ResponseFormat.VERBOSE_JSON: "application/json",
    ResponseFormat.DIARIZED_JSON: "application/json",
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


def _cues(segments: list[Segment]) -> list[tuple[float, float, str, str | None]]:
    """Subtitle players reject empty cues, so segments without text are left out."""
    return [(s.start, max(s.end, s.start), text, s.speaker) for s in segments if (text := s.text.strip())]


def to_srt(transcript: Transcript) -> str:
    """A diarized transcript's cues start with their speaker (`A: …`), SRT having no voice markup."""
    blocks = [
        f"{n}\n{timestamp(start, decimal=',')} --> {timestamp(end, decimal=',')}\n"
        f"{f'{speaker}: ' if speaker else ''}{text}\n"
        for n, (start, end, text, speaker) in enumerate(_cues(transcript.segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    """A diarized transcript's cues carry WebVTT voice spans (`<v A>…`), which players show as the speaker."""
    blocks = [
        f"{timestamp(start, decimal='.')} --> {timestamp(end, decimal='.')}\n"
        f"{f'<v {_vtt_voice(speaker)}>' if speaker else ''}{_vtt_text(text)}\n"
        for start, end, text, speaker in _cues(transcript.segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _vtt_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_voice(name: str) -> str:
    return _vtt_text(name).replace("\n", " ")


def diarized_segment(segment: Segment) -> TranscriptionDiarizedSegment:
    """OpenAI's diarized segment: ids `seg_001`, … A segment without a speaker (a job whose diarizing failed,
    which the worker logs) is "A"."""
    return TranscriptionDiarizedSegment(
        id=f"seg_{segment.id + 1:03d}",
        start=segment.start,
        end=segment.end,
        text=segment.text.strip(),
        speaker=segment.speaker or "A",
    )


def to_diarized(transcript: Transcript) -> TranscriptionDiarizedJson:
    duration = transcript.duration or 0.0
    return TranscriptionDiarizedJson(
        duration=duration,
        text=transcript.text,
        segments=[diarized_segment(s) for s in transcript.segments],
        usage=UsageDuration(seconds=duration),
    )


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
        words = [TranscriptionWord(word=w.word, start=w.start, end=w.end, speaker=w.speaker) for w in transcript.words]
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
    if fmt is ResponseFormat.DIARIZED_JSON:
        return to_diarized(transcript).model_dump_json()
    usage = UsageDuration(seconds=transcript.duration or 0.0)
    return TranscriptionJson(text=transcript.text, usage=usage).model_dump_json()


def to_rttm(recording: str, turns: list[SpeakerTurn]) -> str:
    """NIST's RTTM, as diarization scorers read it: one `SPEAKER` line per turn (onset and duration in seconds).
    Fields are separated by spaces, so spaces in a speaker's name become underscores."""
    lines = []
    for turn in turns:
        name = "_".join(turn.speaker.split()) or "_"
        duration = max(0.0, turn.end - turn.start)
        lines.append(f"SPEAKER {recording} 1 {turn.start:.3f} {duration:.3f} <NA> <NA> {name} <NA> <NA>")
    return "".join(line + "\n" for line in lines)
