"""The official `openai` client against the running stack: only `base_url` changes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.audio import data_url, shared, voices
from tests.support.openai_schemas import validate
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e
JFK = shared("jfk.flac")
GERMAN = shared("fleurs_de_000.ogg")


@pytest.fixture(scope="module")
def client(stack: RunningStack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.api_key, max_retries=0, timeout=300) as c:
        yield c


def test_json(client: openai.OpenAI) -> None:
    with JFK.open("rb") as audio:
        raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=audio)
    body = json.loads(raw.text)
    validate(body, "CreateTranscriptionResponseJson")
    assert "ask not what your country can do for you" in body["text"].lower()
    assert body["usage"] == {"type": "duration", "seconds": 11.0}
    assert raw.headers["x-job-id"].startswith("job_")
    with JFK.open("rb") as audio:
        parsed = client.audio.transcriptions.create(model="base", file=audio, language="en")
    assert "ask not" in parsed.text.lower()


def test_text_srt_vtt(client: openai.OpenAI) -> None:
    with JFK.open("rb") as audio:
        text = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert isinstance(text, str) and "ask not" in text.lower() and text.endswith("\n")
    with JFK.open("rb") as audio:
        srt = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    cues = srt.strip().split("\n\n")
    for n, cue in enumerate(cues, start=1):
        number, times, *lines = cue.split("\n")
        assert number == str(n)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", times)
        assert lines and all(line.strip() for line in lines)
    with JFK.open("rb") as audio:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}$", vtt, re.MULTILINE)


def test_verbose_json_with_both_granularities(client: openai.OpenAI) -> None:
    with JFK.open("rb") as audio:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=audio, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    body = json.loads(raw.text)
    validate(body, "CreateTranscriptionResponseVerboseJson")
    for segment in body["segments"]:
        validate(segment, "TranscriptionSegment")
    for word in body["words"]:
        validate(word, "TranscriptionWord")
    assert body["language"] == "english" and body["task"] == "transcribe"
    assert body["duration"] == pytest.approx(11.0, abs=0.05)
    assert body["usage"] == {"type": "duration", "seconds": body["duration"]}
    words = body["words"]
    assert len(words) >= 20 and all(0 <= w["start"] <= w["end"] <= body["duration"] for w in words)
    parsed = raw.parse()
    assert parsed.words and parsed.segments


def test_verbose_json_word_only_and_default(client: openai.OpenAI) -> None:
    with JFK.open("rb") as audio:
        words_only = json.loads(
            client.audio.transcriptions.with_raw_response.create(
                model="whisper-1", file=audio, response_format="verbose_json", timestamp_granularities=["word"]
            ).text
        )
    assert words_only["words"] and "segments" not in words_only
    with JFK.open("rb") as audio:
        default = json.loads(
            client.audio.transcriptions.with_raw_response.create(
                model="whisper-1", file=audio, response_format="verbose_json"
            ).text
        )
    assert default["segments"] and "words" not in default
    validate(default, "CreateTranscriptionResponseVerboseJson")


# The SDK marks the translations resource deprecated; the endpoint is still what existing integrations call.
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_of_german(client: openai.OpenAI) -> None:
    with GERMAN.open("rb") as audio:
        raw = client.audio.translations.with_raw_response.create(
            model="whisper-1", file=audio, response_format="verbose_json"
        )
    body = json.loads(raw.text)
    validate(body, "CreateTranslationResponseVerboseJson")
    assert body["language"] == "english"
    assert "hong kong" in body["text"].lower()
    with GERMAN.open("rb") as audio:
        plain = client.audio.translations.create(model="whisper-1", file=audio)
    validate(plain.model_dump(exclude_none=True), "CreateTranslationResponseJson")
    assert "hong kong" in plain.text.lower()


def test_streaming(client: openai.OpenAI) -> None:
    with JFK.open("rb") as audio:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}
    for event in events:
        name = "TranscriptTextDeltaEvent" if event.type == "transcript.text.delta" else "TranscriptTextDoneEvent"
        validate(event.model_dump(exclude_none=True), name)
    deltas = "".join(e.delta for e in events[:-1])  # type: ignore[union-attr]
    assert deltas == events[-1].text and "ask not" in deltas.lower()  # type: ignore[union-attr]


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "whisper-1" and "base" in ids
    assert client.models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")


def _error(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.response.json()
    validate(body, "ErrorResponse")
    assert "Traceback" not in exc.response.text and "/work" not in exc.response.text
    error: dict[str, object] = body["error"]
    return error


def test_errors_name_the_parameter(client: openai.OpenAI, tmp_path: Path) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"model": "gpt-9-transcribe"}, "model"),
        ({"model": "whisper-1", "language": "klingon"}, "language"),
        ({"model": "whisper-1", "temperature": 1.5}, "temperature"),
        ({"model": "whisper-1", "response_format": "xml"}, "response_format"),
        (
            {"model": "whisper-1", "response_format": "json", "timestamp_granularities": ["word"]},
            "timestamp_granularities[]",
        ),
    ]
    for kwargs, param in cases:
        with JFK.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
            client.audio.transcriptions.create(file=audio, **kwargs)  # type: ignore[call-overload]
        assert _error(caught.value)["param"] == param, kwargs

    corrupt = tmp_path / "broken.mp3"
    corrupt.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 40)
    with corrupt.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=audio)
    error = _error(caught.value)
    assert error["param"] == "file" and error["code"] == "undecodable_audio"

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with empty.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert _error(caught.value)["param"] == "file"

    big = tmp_path / "big.wav"
    big.write_bytes(b"\x00" * (9 << 20))
    with big.open("rb") as audio, pytest.raises(openai.APIStatusError) as too_large:
        client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert too_large.value.status_code == 413 and _error(too_large.value)["code"] == "payload_too_large"


def test_missing_file_and_model(stack: RunningStack) -> None:
    no_file = stack.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    no_model = stack.post("/v1/audio/transcriptions", files={"file": ("a.flac", JFK.read_bytes())})
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    validate(no_model.json(), "ErrorResponse")


def test_concurrent_requests_queue_instead_of_failing(stack: RunningStack) -> None:
    async def many() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=f"{stack.base_url}/v1", api_key=stack.api_key, max_retries=0, timeout=300
        ) as client:

            async def one() -> str:
                result = await client.audio.transcriptions.create(
                    model="whisper-1", file=("jfk.flac", JFK.read_bytes()), response_format="text"
                )
                return str(result)

            return await asyncio.gather(*(one() for _ in range(6)))

    texts = asyncio.run(many())
    assert len(texts) == 6 and all("ask not" in t.lower() for t in texts)


def test_diarized_json_labels_voices_and_names_a_known_speaker(client: openai.OpenAI, tmp_path: Path) -> None:
    bounds = voices(tmp_path / "two.flac", ["ljspeech_LJ001-0001.wav", "jfk.flac"])
    reference = data_url(JFK, 5.0, 11.0, tmp_path)
    with (tmp_path / "two.flac").open("rb") as audio:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1",
            file=audio,
            response_format="diarized_json",
            known_speaker_names=["kennedy"],
            known_speaker_references=[reference],
        )
    body = json.loads(raw.text)
    validate(body, "CreateTranscriptionResponseDiarizedJson")
    segments = body["segments"]
    assert [s["id"] for s in segments] == [f"seg_{n:03d}" for n in range(1, len(segments) + 1)]
    woman = {s["speaker"] for s in segments if s["end"] <= bounds[0][1] + 0.5}
    man = {s["speaker"] for s in segments if s["start"] >= bounds[1][0] - 0.5}
    assert woman == {"A"} and man == {"kennedy"}, segments
    assert "ask not what your country" in " ".join(s["text"] for s in segments if s["speaker"] == "kennedy").lower()
    with (tmp_path / "two.flac").open("rb") as audio:
        parsed = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="diarized_json")
    assert parsed.segments[0].speaker == "A" and {s.speaker for s in parsed.segments} == {"A", "B"}


def test_diarization_errors_name_the_parameter(stack: RunningStack, tmp_path: Path) -> None:
    short = data_url(JFK, 0.0, 0.5, tmp_path)
    cases: list[tuple[dict[str, str | list[str]], str]] = [
        ({"known_speaker_names[]": ["a", "b"], "known_speaker_references[]": [short]}, "known_speaker_names[]"),
        (
            {"known_speaker_names[]": ["a"], "known_speaker_references[]": ["not a data url"]},
            "known_speaker_references[]",
        ),
        ({"known_speaker_names[]": ["a"], "known_speaker_references[]": [short]}, "known_speaker_references[]"),
        (
            {
                "known_speaker_names[]": ["a"],
                "known_speaker_references[]": [data_url(JFK, 0, 4, tmp_path)],
                "response_format": "json",
            },
            "response_format",
        ),
    ]
    for fields, param in cases:
        data: dict[str, str | list[str]] = {"model": "whisper-1", "response_format": "diarized_json", **fields}
        with JFK.open("rb") as audio:
            response = stack.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", audio)}, data=data)
        assert response.status_code == 400, (fields, response.text)
        assert response.json()["error"]["param"] == param, response.text
    bounds: list[tuple[dict[str, str], str]] = [
        ({"diarize": "true", "min_speakers": "3", "max_speakers": "2"}, "min_speakers"),
        ({"max_speakers": "2"}, "diarize"),
        ({"diarize": "true", "max_speakers": "0"}, "max_speakers"),
    ]
    for form, name in bounds:
        response = stack.post("/v1/jobs", files={"file": ("jfk.flac", JFK.read_bytes())}, data=form)
        assert response.status_code == 400 and response.json()["error"]["param"] == name, response.text
    done = stack.wait(stack.submit(JFK).json()["id"])
    response = stack.get(f"/v1/jobs/{done['id']}", params={"format": "diarized_json"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_diarized"
