"""HTTP behaviour that needs no broker: a clear 503 when the queue is down, OpenAI error bodies, upload limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from api import ApiSettings, create_app
from api.database import open_database
from api.keys import KeyStore
from ingest import KafkaSettings, StorageSettings
from tests.support.audio import SHARED_AUDIO
from tests.support.ports import free_port


def _settings(tmp_path: Path, **overrides: object) -> ApiSettings:
    """No broker listens on the port: every publish fails, which is what these tests need."""
    return ApiSettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", delivery_timeout_s=2),
        storage=StorageSettings(local_root=tmp_path / "objects"),
        database_path=tmp_path / "jobs.sqlite3",
        **overrides,  # type: ignore[arg-type]
    )


def _client(settings: ApiSettings) -> TestClient:
    """A client that sends a key made in the API's database."""
    engine = open_database(None, settings.database_path)
    _record, key = KeyStore(engine).create("tests")
    engine.dispose()
    return TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"})


def test_upload_without_broker_is_503_and_leaves_nothing(tmp_path: Path) -> None:
    with _client(_settings(tmp_path)) as client:
        jfk = (SHARED_AUDIO / "jfk.flac").read_bytes()
        response = client.post("/v1/jobs", files={"file": ("a.flac", jfk, "audio/flac")})
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["type"] == "server_error" and error["code"] == "service_unavailable"
        assert "127.0.0.1" not in error["message"]
        assert client.get("/v1/jobs").json()["data"] == []
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []


def test_validation_errors_use_the_openai_body(tmp_path: Path) -> None:
    with _client(_settings(tmp_path, max_upload_bytes=1000)) as client:
        cases = [
            (client.post("/v1/jobs", data={"language": "en"}), 400, "file"),
            (client.post("/v1/jobs", files={"file": ("a.wav", b"", "audio/wav")}), 400, "file"),
            (
                client.post("/v1/jobs", files={"file": ("a.wav", b"x", "audio/wav")}, data={"task": "dance"}),
                400,
                "task",
            ),
            (
                client.post("/v1/jobs", files={"file": ("a.wav", b"x", "audio/wav")}, data={"language": "xx-1"}),
                400,
                "language",
            ),
            (client.post("/v1/jobs", files={"file": ("a.wav", b"x" * 5000, "audio/wav")}), 413, "file"),
            (client.get("/v1/jobs/job_missing"), 404, "job_id"),
            (client.get("/v1/jobs", params={"limit": 0}), 400, "limit"),
            (client.get("/v1/nothing-here"), 404, None),
        ]
        for response, status, param in cases:
            assert response.status_code == status, response.text
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["param"] == param
            assert "Traceback" not in error["message"]


def test_streamed_upload_without_length_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_upload_bytes=100_000)
    boundary = "xyzzy"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(50):
            yield b"\x00" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    with _client(settings) as client:
        response = client.post(
            "/v1/jobs", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


def test_ready_names_what_is_down(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path))) as client:
        response = client.get("/ready")  # no key needed
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["kafka"].startswith("error") and body["storage"] == "ok" and body["database"] == "ok"
