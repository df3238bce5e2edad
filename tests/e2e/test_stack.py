"""End to end: real audio through the API, Kafka, the workers and the materialiser, as users and downstream
consumers see it."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from confluent_kafka import Consumer, Producer

from ingest import LocalObjectStore
from schemas import DEFAULT_TOPICS, AudioRef, DeadLetter, TranscriptionRequested
from tests.support.audio import encode, read_stereo, shared
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_jfk_upload_end_to_end(stack: RunningStack) -> None:
    response = stack.submit(shared("jfk.flac"))
    assert response.status_code == 202
    created = response.json()
    assert created["status"] == "queued" and response.headers["location"] == f"/v1/jobs/{created['id']}"
    job = stack.wait(created["id"])
    assert job["status"] == "completed", job
    assert job["language"] == "en" and job["language_probability"] > 0.5
    assert job["duration"] == pytest.approx(11.0, abs=0.05)
    assert job["progress"] == 1.0
    result = job["result"]
    assert "ask not what your country can do for you" in result["text"].lower()
    for segment in result["segments"]:
        assert {"id", "start", "end", "text", "avg_logprob", "no_speech_prob"} <= set(segment)
    words = result["words"]
    assert words and all(set(w) >= {"word", "start", "end", "probability"} for w in words)
    assert all(0 <= w["start"] <= w["end"] <= job["duration"] for w in words)
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(words))

    url = f"/v1/jobs/{created['id']}"
    srt = stack.get(url, params={"format": "srt"}).text
    assert srt.startswith("1\n00:00:00,000 --> 00:00:") and "ask not" in srt
    assert stack.get(url, params={"format": "vtt"}).text.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert "ask not" in stack.get(url, params={"format": "text"}).text
    assert "ask not" in stack.get(url, params={"format": "json"}).json()["text"]
    verbose = stack.get(url, params={"format": "verbose_json"}).json()
    assert verbose["language"] == "english" and verbose["words"] and verbose["segments"]


def test_german_is_detected(stack: RunningStack) -> None:
    job = stack.wait(stack.submit(shared("fleurs_de_000.ogg")).json()["id"])
    assert job["status"] == "completed" and job["language"] == "de"
    assert "hongkong" in job["result"]["text"].lower().replace(" ", "")


def test_bad_inputs_fail_with_a_reason_and_the_next_job_succeeds(stack: RunningStack, tmp_path: Path) -> None:
    empty = stack.submit(content=b"")
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "file"
    corrupt = stack.submit(content=b"\x00\x01garbage" * 500)
    assert corrupt.status_code == 400 and corrupt.json()["error"]["code"] == "undecodable_audio"
    # An object already in the store is not probed by the API: the worker finds it unreadable and fails the job.
    junk = stack.data_dir / "objects" / "incoming" / "junk.bin"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"\x00\x01garbage" * 500)
    referenced = stack.post("/v1/jobs", data={"audio_key": "incoming/junk.bin"})
    assert referenced.status_code == 202, referenced.text
    failed = stack.wait(referenced.json()["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "undecodable_audio" and failed["error"]["message"]
    assert stack.get(f"/v1/jobs/{failed['id']}", params={"format": "srt"}).status_code == 409
    unknown_model = stack.submit(shared("jfk.flac"), model="large-v9")
    assert unknown_model.status_code == 400 and unknown_model.json()["error"]["param"] == "model"
    too_big = stack.submit(content=b"\x00" * (9 << 20))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    mp3 = encode(read_stereo(shared("jfk.flac"), 44_100), tmp_path / "jfk.mp3", rate=44_100, codec="libmp3lame")
    job = stack.wait(stack.submit(mp3).json()["id"])
    assert job["status"] == "completed" and "ask not" in job["result"]["text"].lower()


def _consume(bootstrap: str, topic: str, until: Any, timeout: float = 120) -> list[Any]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    seen: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(seen):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                seen.append(message)
    finally:
        consumer.close()
    return seen


def test_direct_kafka_producer_with_a_storage_reference(stack: RunningStack) -> None:
    """An outside producer: the audio is put in the store, the request goes straight onto the topic."""
    store = LocalObjectStore(stack.data_dir / "objects")
    key = f"external/{uuid.uuid4().hex}.wav"
    with shared("librispeech_dev-clean_1272-128104-0000.wav").open("rb") as audio:
        store.put(key, audio, length=-1)
    job_id = f"ext-{uuid.uuid4().hex[:12]}"
    request = TranscriptionRequested(job_id=job_id, audio=AudioRef(key=key))
    producer = Producer({"bootstrap.servers": stack.bootstrap, "acks": "all"})
    producer.produce(DEFAULT_TOPICS.requests, key=job_id.encode(), value=request.model_dump_json().encode())
    malformed_key = f"bad-{uuid.uuid4().hex[:8]}"
    producer.produce(DEFAULT_TOPICS.requests, key=malformed_key.encode(), value=b'{"job_id": 42, "audio": null}')
    assert producer.flush(10) == 0

    job = stack.wait(job_id)
    assert job["status"] == "completed", job
    assert "quilter" in job["result"]["text"].lower()

    letters = _consume(
        stack.bootstrap, DEFAULT_TOPICS.dlq, lambda seen: any(m.key() == malformed_key.encode() for m in seen)
    )
    letter = DeadLetter.model_validate_json(next(m.value() for m in letters if m.key() == malformed_key.encode()))
    assert letter.source_topic == DEFAULT_TOPICS.requests and "job_id" in letter.reason
    jsonschema.validate(
        json.loads(letter.model_dump_json()), json.loads((SCHEMAS / "DeadLetter.schema.json").read_text())
    )


def test_downstream_consumer_reads_segments_that_match_the_published_schema(stack: RunningStack) -> None:
    job = stack.wait(stack.submit(shared("jfk.flac")).json()["id"])
    expected = len(job["result"]["segments"])
    schema = json.loads((SCHEMAS / "SegmentTranscribed.schema.json").read_text())
    messages = _consume(
        stack.bootstrap,
        DEFAULT_TOPICS.segments,
        lambda seen: sum(m.key() == job["id"].encode() for m in seen) >= expected,
    )
    mine = [json.loads(m.value()) for m in messages if m.key() == job["id"].encode()]
    assert len(mine) == expected
    for event in mine:
        jsonschema.validate(event, schema)
    assert [e["segment"]["id"] for e in mine] == list(range(expected))
    statuses = _consume(
        stack.bootstrap,
        DEFAULT_TOPICS.jobs,
        lambda seen: any(m.key() == job["id"].encode() and b'"completed"' in m.value() for m in seen),
    )
    status_schema = json.loads((SCHEMAS / "JobStatusChanged.schema.json").read_text())
    for message in statuses:
        jsonschema.validate(json.loads(message.value()), status_schema)


def test_job_list_is_newest_first_and_pages(stack: RunningStack) -> None:
    first = stack.get("/v1/jobs", params={"limit": 2}).json()
    assert first["object"] == "list" and len(first["data"]) == 2 and first["has_more"]
    second = stack.get("/v1/jobs", params={"limit": 2, "after": first["last_id"]}).json()
    ids = [j["id"] for j in first["data"] + second["data"]]
    assert len(set(ids)) == len(ids)
    created = [j["created_at"] for j in first["data"] + second["data"]]
    assert created == sorted(created, reverse=True)
