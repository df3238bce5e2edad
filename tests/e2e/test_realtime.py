"""`/v1/realtime` against the running stack: the official `openai` client in transcription mode, the older
session shape, keys, and bad input."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import websockets
from websockets.typing import Subprotocol

from processors.audio import SAMPLE_RATE, decode_audio
from tests.support.accuracy import normalise
from tests.support.audio import shared
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def pcm16(seconds_of_silence: float = 1.5, rate: int = 24_000) -> bytes:
    """jfk.flac then silence, as little-endian PCM16 mono at `rate` (24 kHz is what OpenAI clients send)."""
    import av

    audio = np.concatenate([decode_audio(shared("jfk.flac")), np.zeros(int(seconds_of_silence * SAMPLE_RATE))])
    frame = av.AudioFrame.from_ndarray(audio.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    out = [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(out).astype("<i2").tobytes()


def ws_url(stack: RunningStack, query: str = "intent=transcription") -> str:
    return stack.base_url.replace("http://", "ws://", 1) + "/v1/realtime?" + query


async def stream(send: Any, audio: bytes, rate: int, speed: float = 2.0) -> None:
    """100 ms appends at `speed` times real time."""
    step = int(rate * 0.1) * 2
    for at in range(0, len(audio), step):
        piece = base64.b64encode(audio[at : at + step]).decode()
        await send({"type": "input_audio_buffer.append", "audio": piece})
        await asyncio.sleep(0.1 / speed)


def test_the_openai_client_transcribes_live_and_the_session_is_a_job(stack: RunningStack) -> None:
    events: list[dict[str, Any]] = []

    async def session() -> None:
        client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.api_key, max_retries=0)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
            update = {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "whisper-1", "language": "en"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }
                },
            }
            await connection.send({"type": "session.update", "session": update})  # type: ignore[arg-type]
            sender = asyncio.create_task(stream(connection.send, pcm16(), 24_000))
            # Once everything is sent (the last 1.5 s silent), the last turn ends and completes, then all is quiet.
            while True:
                try:
                    event = await asyncio.wait_for(connection.recv(), 8)
                except TimeoutError:
                    if sender.done():
                        break
                    continue
                events.append(json.loads(event.to_json()))
            await sender

    asyncio.run(asyncio.wait_for(session(), 120))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session.created" and "session.updated" in kinds
    sid = events[0]["session"]["id"]
    updated = next(e for e in events if e["type"] == "session.updated")["session"]
    assert updated["audio"]["input"]["transcription"]["language"] == "en"
    assert updated["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    completed = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert started and len(completed) >= 2
    for turn in completed:
        # Each turn: started, stopped, committed, then its text; the deltas add up to the completed text.
        item = turn["item_id"]
        order = [e["type"] for e in events if e.get("item_id") == item]
        steps = ["speech_started", "speech_stopped", "committed", "transcription.completed"]
        at = [next(n for n, kind in enumerate(order) if kind.endswith(step)) for step in steps]
        assert at == sorted(at), order
        deltas = "".join(e["delta"] for e in events if e["type"].endswith(".delta") and e["item_id"] == item)
        assert deltas == turn["transcript"]
        assert turn["usage"]["type"] == "duration" and turn["usage"]["seconds"] > 0
    text = normalise(" ".join(e["transcript"] for e in completed))
    assert "ask what you can do for your country" in text

    # Leaving completes the session's job: its turns are its segments, its audio is kept.
    job = stack.wait(sid, timeout=60)
    assert job["status"] == "completed", job
    assert normalise(job["result"]["text"]) == text
    assert all(segment["words"] for segment in job["result"]["segments"])
    audio = stack.get(f"/v1/jobs/{sid}/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] in ("audio/wav", "audio/x-wav")
    assert abs(len(audio.content) - 44 - 2 * 12.5 * SAMPLE_RATE) < 2 * SAMPLE_RATE  # 11 s and 1.5 s of silence
    ranged = stack.get(f"/v1/jobs/{sid}/audio", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100  # players seek with ranges
    srt = stack.get(f"/v1/jobs/{sid}", params={"format": "srt"})
    assert srt.status_code == 200 and "your country" in srt.text.lower()


def test_the_older_session_shape_at_16_khz_with_the_key_as_a_browser_sends_it(stack: RunningStack) -> None:
    async def session() -> list[dict[str, Any]]:
        protocols = [Subprotocol("realtime"), Subprotocol(f"openai-insecure-api-key.{stack.api_key}")]
        async with websockets.connect(ws_url(stack), subprotocols=protocols) as ws:
            assert ws.subprotocol == "realtime"
            received = [json.loads(await ws.recv())]
            update = {
                "type": "transcription_session.update",
                "session": {
                    "input_audio_format": "pcm16",
                    "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                    "turn_detection": None,
                },
            }
            await ws.send(json.dumps(update))
            received.append(json.loads(await ws.recv()))
            # 16 kHz through the current shape's format, then the client ends the turn itself.
            rate = {"type": "session.update", "session": {"audio": {"input": {"format": {"rate": 16000}}}}}
            await ws.send(json.dumps(rate))
            received.append(json.loads(await ws.recv()))
            await stream(lambda e: ws.send(json.dumps(e)), pcm16(0.3, rate=16_000), 16_000, speed=4.0)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while not received[-1]["type"].endswith("transcription.completed"):
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
            return received

    received = asyncio.run(session())
    assert received[1]["type"] == "transcription_session.updated"
    beta = received[1]["session"]
    assert beta["input_audio_format"] == "pcm16" and beta["turn_detection"] is None
    assert beta["input_audio_transcription"] == {"model": "gpt-4o-transcribe", "language": "en", "prompt": None}
    assert received[2]["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 16000}
    kinds = [e["type"] for e in received]
    assert "input_audio_buffer.speech_started" not in kinds  # no server VAD: turns are the client's
    assert kinds.count("input_audio_buffer.committed") == 1
    assert "ask what you can do for your country" in normalise(received[-1]["transcript"])


def test_a_handshake_without_a_valid_key_is_refused_with_an_openai_error(stack: RunningStack) -> None:
    async def refused(url: str) -> tuple[int, dict[str, Any]]:
        with pytest.raises(websockets.InvalidStatus) as caught:
            async with websockets.connect(url):
                pass
        response = caught.value.response
        return response.status_code, json.loads(response.body or b"{}")

    status, body = asyncio.run(refused(ws_url(stack)))
    assert status == 401 and body["error"]["code"] == "missing_api_key"
    status, body = asyncio.run(refused(ws_url(stack, "intent=transcription&api_key=sfk_nope_nope")))
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, body = asyncio.run(refused(ws_url(stack, f"intent=conversation&api_key={stack.api_key}")))
    assert status == 400 and body["error"]["param"] == "intent"
    assert httpx.get(f"{stack.base_url}/v1/realtime", timeout=10).status_code in (401, 404, 405)


def test_bad_client_events_get_error_events_and_the_session_goes_on(stack: RunningStack) -> None:
    async def session() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(stack, f"intent=transcription&api_key={stack.api_key}")) as ws:
            await ws.recv()  # session.created
            answers = []
            for bad in (
                "not json",
                json.dumps({"type": "response.create"}),
                json.dumps({"type": "input_audio_buffer.append", "audio": "%%% not base64 %%%"}),
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"odd").decode()}),
                json.dumps({"type": "session.update", "session": {"audio": {"input": {"format": {"rate": 8000}}}}}),
                json.dumps({"type": "transcription_session.update", "session": {"input_audio_format": "g711_ulaw"}}),
                json.dumps(
                    {"type": "session.update", "session": {"audio": {"input": {"transcription": {"language": "xx"}}}}}
                ),
                json.dumps({"type": "input_audio_buffer.commit", "event_id": "evt_1"}),
            ):
                await ws.send(bad)
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            # Still serving: a good update is answered.
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription"}}))
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            return answers

    answers = asyncio.run(session())
    errors = answers[:-1]
    assert all(a["type"] == "error" for a in errors), answers
    codes = [a["error"]["code"] for a in errors]
    assert codes == [
        "invalid_json",
        "invalid_event_type",
        "invalid_value",
        "invalid_value",
        "invalid_value",
        "invalid_value",
        "invalid_value",
        "input_audio_buffer_commit_empty",
    ]
    assert all(a["error"]["type"] == "invalid_request_error" and a["error"]["message"] for a in errors)
    assert errors[4]["error"]["param"] == "session.audio.input.format.rate"
    assert errors[7]["error"]["event_id"] == "evt_1"  # which commit failed
    assert answers[-1]["type"] == "session.updated"
