"""Transcript writers: pure functions from a `Transcript` to the body of each response format."""

from __future__ import annotations

import json
from enum import StrEnum

from schemas import Segment, Transcript


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


def to_verbose(transcript: Transcript, *, words: bool = True) -> dict[str, object]:
    body: dict[str, object] = {
        "task": transcript.task.value,
        "language": transcript.language,
        "duration": transcript.duration,
        "text": transcript.text,
        "segments": [
            {
                "id": s.id,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": s.tokens,
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for s in transcript.segments
        ],
    }
    if words:
        body["words"] = [w.model_dump(include={"word", "start", "end"}) for w in transcript.words]
    return body


def render(transcript: Transcript, fmt: ResponseFormat) -> str:
    """The response body for `fmt`, as text (JSON formats serialised)."""
    if fmt is ResponseFormat.TEXT:
        return transcript.text + "\n"
    if fmt is ResponseFormat.SRT:
        return to_srt(transcript)
    if fmt is ResponseFormat.VTT:
        return to_vtt(transcript)
    if fmt is ResponseFormat.VERBOSE_JSON:
        return json.dumps(to_verbose(transcript), ensure_ascii=False)
    return json.dumps({"text": transcript.text}, ensure_ascii=False)
