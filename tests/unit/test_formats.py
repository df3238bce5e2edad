import json
import re

from hypothesis import given
from hypothesis import strategies as st

from api.formats import Granularity, ResponseFormat, render, timestamp, to_rttm, to_srt, to_vtt
from schemas import Segment, SpeakerTurn, Transcript, Word


def _segment(i: int, start: float, end: float, text: str) -> Segment:
    return Segment(
        id=i,
        start=start,
        end=end,
        text=text,
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        words=[Word(word=text.strip(), start=start, end=end, probability=0.9)] if text.strip() else [],
    )


TRANSCRIPT = Transcript(
    text="Hello there. Zweite Zeile — ünïcödé",
    language="en",
    language_probability=0.9,
    duration=3725.5,
    segments=[
        _segment(0, 0.0, 1.5, " Hello there."),
        _segment(1, 1.5, 2.0, "   "),
        _segment(2, 3600.25, 3725.4996, " Zweite Zeile — ünïcödé"),
    ],
)


def test_timestamp_srt_and_vtt_separators() -> None:
    assert timestamp(0, decimal=",") == "00:00:00,000"
    assert timestamp(3725.4996, decimal=".") == "01:02:05.500"
    assert timestamp(90000.0, decimal=",") == "25:00:00,000"
    assert timestamp(-0.2, decimal=",") == "00:00:00,000"


@given(st.floats(min_value=0, max_value=10 * 3600, allow_nan=False))
def test_timestamp_round_trips_to_the_millisecond(seconds: float) -> None:
    text = timestamp(seconds, decimal=",")
    hours, minutes, rest = text.split(":")
    secs, millis = rest.split(",")
    parsed = int(hours) * 3600 + int(minutes) * 60 + int(secs) + int(millis) / 1000
    assert abs(parsed - seconds) <= 0.0005 + 1e-9
    assert re.fullmatch(r"\d{2,}:[0-5]\d:[0-5]\d,\d{3}", text)


def test_srt_numbers_cues_from_one_and_drops_empty_ones() -> None:
    assert to_srt(TRANSCRIPT) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:00:00,250 --> 01:02:05,500\nZweite Zeile — ünïcödé\n"
    )


def test_vtt_has_header_and_dot_millis() -> None:
    assert to_vtt(TRANSCRIPT) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.500\nHello there.\n\n"
        "01:00:00.250 --> 01:02:05.500\nZweite Zeile — ünïcödé\n"
    )


def test_json_formats() -> None:
    assert json.loads(render(TRANSCRIPT, ResponseFormat.JSON)) == {
        "text": TRANSCRIPT.text,
        "usage": {"type": "duration", "seconds": 3725.5},
    }
    assert render(TRANSCRIPT, ResponseFormat.TEXT) == TRANSCRIPT.text + "\n"


def test_verbose_json_follows_the_granularities() -> None:
    default = json.loads(render(TRANSCRIPT, ResponseFormat.VERBOSE_JSON))
    assert default["language"] == "english" and default["task"] == "transcribe"
    assert default["duration"] == 3725.5 and default["usage"] == {"type": "duration", "seconds": 3725.5}
    assert [s["id"] for s in default["segments"]] == [0, 1, 2]
    assert set(default["segments"][0]) == {
        "id",
        "seek",
        "start",
        "end",
        "text",
        "tokens",
        "temperature",
        "avg_logprob",
        "compression_ratio",
        "no_speech_prob",
    }
    assert "words" not in default
    both = json.loads(
        render(
            TRANSCRIPT, ResponseFormat.VERBOSE_JSON, granularities=frozenset({Granularity.WORD, Granularity.SEGMENT})
        )
    )
    assert [w["word"] for w in both["words"]] == ["Hello there.", "Zweite Zeile — ünïcödé"]
    assert set(both["words"][0]) == {"word", "start", "end"}
    words_only = json.loads(
        render(TRANSCRIPT, ResponseFormat.VERBOSE_JSON, granularities=frozenset({Granularity.WORD}))
    )
    assert "segments" not in words_only and len(words_only["words"]) == 2


def test_rttm_is_what_pyannote_writes_for_the_same_turns() -> None:
    from pyannote.core import Annotation
    from pyannote.core import Segment as Span

    turns = [
        SpeakerTurn(start=0.25, end=3.5, speaker="A"),
        SpeakerTurn(start=3.75, end=9.125, speaker="Ada Lovelace"),
        SpeakerTurn(start=10.0, end=10.5, speaker="A"),
    ]
    reference = Annotation(uri="job_1")
    for turn in turns:
        reference[Span(turn.start, turn.end)] = "_".join(turn.speaker.split())
    assert to_rttm("job_1", turns) == "".join(reference._iter_rttm())
    assert to_rttm("job_1", []) == ""
