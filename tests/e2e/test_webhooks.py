"""Webhooks end to end: a real stack calls a real receiver; signatures, retries, 410, giving up, attempts listed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.support.audio import long_speech, shared
from tests.support.stack import RunningStack, start_stack, stop_stack

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


class Receiver:
    """Answers by path: /ok 200; /flaky 500 twice, then 200; /once 500, then 200; /hang answers its first call
    only after 5 s, then 200 at once; /gone 410; /down always 500; /redirect 302 to /elsewhere."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.calls.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    seen = sum(1 for path, _h, _b in receiver.calls if path == self.path)
                route = self.path.split("?")[0]
                if route == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.end_headers()
                    return
                if route == "/hang" and seen == 1:
                    time.sleep(5)
                code = {"/ok": 200, "/gone": 410, "/down": 500, "/hang": 200}.get(route)
                if code is None:
                    code = 200 if seen > (1 if route == "/once" else 2) else 500
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"thanks")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.calls if p == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    env = {
        "SCRIBEFLOW_WEBHOOKS__SECRET": SECRET,
        "SCRIBEFLOW_WEBHOOKS__ALLOW_PRIVATE_URLS": "true",
        "SCRIBEFLOW_WEBHOOKS__BACKOFF_S": "2",
        "SCRIBEFLOW_WEBHOOKS__MAX_BACKOFF_S": "4",
        "SCRIBEFLOW_WEBHOOKS__MAX_ATTEMPTS": "3",
        "SCRIBEFLOW_WEBHOOKS__TIMEOUT_S": "3",
        "SCRIBEFLOW_WEBHOOKS__POLL_S": "0.2",
    }
    running = start_stack(tmp_path_factory.mktemp("webhook-stack"), env=env)
    yield running
    assert stop_stack(running) == 0, running.log_tail()


def _deliveries(stack: RunningStack, job_id: str, until: Any, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found: list[dict[str, Any]] = stack.get(f"/v1/jobs/{job_id}/webhooks").json()["data"]
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_a_completed_job_calls_its_webhook_signed_with_the_transcript(hooked: RunningStack, receiver: Receiver) -> None:
    job = hooked.wait(hooked.submit(shared("jfk.flac"), webhook_url=f"{receiver.url}/ok").json()["id"])
    found = _deliveries(hooked, job["id"], lambda d: d and d[0]["state"] != "pending")
    assert [d["state"] for d in found] == ["delivered"] and found[0]["attempts"][0]["status_code"] == 200
    headers, body = receiver.to("/ok")[-1]
    event = Webhook(SECRET).verify(body, headers)  # raises unless signed with the server's secret
    assert event["type"] == "transcription.completed" and event["data"]["id"] == job["id"]
    assert "ask not what your country" in event["data"]["transcript"]["text"].lower()
    assert headers["webhook-id"] == found[0]["event_id"]
    # The signature again, by hand, as the Standard Webhooks convention defines it (an independent check).
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert expected in headers["webhook-signature"].split(" ")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 120
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 24).decode()).verify(body, headers)


def test_failures_are_retried_with_the_same_id_and_410_stops_at_once(hooked: RunningStack, receiver: Receiver) -> None:
    flaky = hooked.wait(hooked.submit(shared("jfk.flac"), webhook_url=f"{receiver.url}/flaky").json()["id"])
    gone = hooked.wait(hooked.submit(shared("jfk.flac"), webhook_url=f"{receiver.url}/gone").json()["id"])
    retried = _deliveries(hooked, flaky["id"], lambda d: d and d[0]["state"] != "pending")[0]
    assert retried["state"] == "delivered"
    assert [a["status_code"] for a in retried["attempts"]] == [500, 500, 200]
    assert len({h["webhook-id"] for h, _b in receiver.to("/flaky")}) == 1  # receivers can de-duplicate
    stopped = _deliveries(hooked, gone["id"], lambda d: d and d[0]["state"] != "pending")[0]
    assert stopped["state"] == "gone" and [a["status_code"] for a in stopped["attempts"]] == [410]
    time.sleep(1.5)
    assert len(receiver.to("/gone")) == 1


def test_a_receiver_that_never_answers_2xx_is_given_up_into_the_dead_letter_topic(
    hooked: RunningStack, receiver: Receiver
) -> None:
    junk = hooked.data_dir / "objects" / "incoming" / "junk.bin"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"\x00\x01garbage" * 500)
    accepted = hooked.post("/v1/jobs", data={"audio_key": "incoming/junk.bin", "webhook_url": f"{receiver.url}/down"})
    job = hooked.wait(accepted.json()["id"])
    assert job["status"] == "failed"
    given_up = _deliveries(hooked, job["id"], lambda d: d and d[0]["state"] != "pending")[0]
    assert given_up["state"] == "failed" and len(given_up["attempts"]) == 3
    headers, body = receiver.to("/down")[0]
    event = Webhook(SECRET).verify(body, headers)
    assert event["type"] == "transcription.failed" and event["data"]["error"]["code"] == "undecodable_audio"

    consumer = Consumer(
        {"bootstrap.servers": hooked.bootstrap, "group.id": "webhook-dlq", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["transcription.dlq.v1"])
    letters: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not letters:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            letter = json.loads(message.value() or b"{}")
            if letter.get("type") == "webhook.gave_up" and letter.get("job_id") == job["id"]:
                letters.append(letter)
    consumer.close()
    assert letters and letters[0]["attempts"] == 3 and "500" in letters[0]["reason"]


def test_unsafe_or_unconfigured_webhooks_are_refused_at_submission(hooked: RunningStack) -> None:
    for url in ("ftp://example.com/x", "http://user:pw@127.0.0.1/x", "not a url"):
        refused = hooked.submit(shared("jfk.flac"), webhook_url=url)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "webhook_url", url


def test_a_job_that_ends_while_the_api_is_down_still_gets_its_webhook_once(
    hooked: RunningStack, receiver: Receiver, tmp_path: Path
) -> None:
    job_id = hooked.submit(long_speech(tmp_path / "long.flac"), webhook_url=f"{receiver.url}/ok?after-restart").json()[
        "id"
    ]
    hooked.wait(job_id, lambda job: job["status"] == "processing")
    os.kill(hooked.child_pid("api"), signal.SIGKILL)
    hooked.wait_ready()  # the launcher restarts it; its materialiser resumes from its offsets
    assert hooked.wait(job_id)["status"] == "completed"
    found = _deliveries(hooked, job_id, lambda d: d and d[0]["state"] != "pending")
    assert [d["state"] for d in found] == ["delivered"]
    time.sleep(1.5)
    assert len(receiver.to("/ok?after-restart")) == 1


def test_a_receiver_that_hangs_past_the_timeout_is_tried_again(hooked: RunningStack, receiver: Receiver) -> None:
    job = hooked.wait(hooked.submit(shared("jfk.flac"), webhook_url=f"{receiver.url}/hang").json()["id"])
    found = _deliveries(hooked, job["id"], lambda d: d and d[0]["state"] != "pending")[0]
    assert found["state"] == "delivered"
    first, second = found["attempts"]
    assert first["status_code"] is None and "Timeout" in first["error"] and first["latency_ms"] >= 2900
    assert second["status_code"] == 200


def test_a_restart_of_the_sender_between_attempts_still_delivers_once(hooked: RunningStack, receiver: Receiver) -> None:
    job = hooked.wait(hooked.submit(shared("jfk.flac"), webhook_url=f"{receiver.url}/once").json()["id"])
    _deliveries(hooked, job["id"], lambda d: d and len(d[0]["attempts"]) == 1)  # the first attempt got a 500
    os.kill(hooked.child_pid("api"), signal.SIGKILL)  # the sender dies before the retry is due
    hooked.wait_ready()  # the launcher restarts it; its materialiser resumes from its offsets
    found = _deliveries(hooked, job["id"], lambda d: d and d[0]["state"] != "pending")[0]
    assert found["state"] == "delivered" and [a["status_code"] for a in found["attempts"]] == [500, 200]
    time.sleep(3)
    assert len(receiver.to("/once")) == 2


def test_redirects_are_not_followed(hooked: RunningStack, receiver: Receiver) -> None:
    job = hooked.wait(hooked.submit(shared("jfk.flac"), webhook_url=f"{receiver.url}/redirect").json()["id"])
    found = _deliveries(hooked, job["id"], lambda d: d and d[0]["state"] != "pending")[0]
    assert found["state"] == "failed" and {a["status_code"] for a in found["attempts"]} == {302}
    assert receiver.to("/elsewhere") == []
