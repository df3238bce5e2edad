"""API keys, job ownership, rate limits and audio quotas, through the real API on the real broker.

The API runs in-process (TestClient) against the session's Kafka broker; keys are made by the CLI, as a user makes
them, into the API's own database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import ApiSettings, create_app
from api.settings import AuthSettings, LimitSettings
from tests.support.audio import SHARED_AUDIO
from tests.support.keys import bearer, cli, new_key

pytestmark = pytest.mark.kafka

JFK = SHARED_AUDIO / "jfk.flac"  # 11 s
SHORT = SHARED_AUDIO / "librispeech_test-clean_672-122797-0000.flac"  # 4 s


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def upload(client: TestClient, key: str, path: Path = JFK, route: str = "/v1/jobs", **data: str) -> Any:
    return client.post(route, headers=bearer(key), files={"file": (path.name, path.read_bytes())}, data=data)


def test_every_route_but_health_and_ready_needs_a_valid_key(settings: ApiSettings, client: TestClient) -> None:
    key = new_key(settings, "someone")
    revoked = new_key(settings, "former")
    revoked_id = revoked.split("_")[1]
    assert cli(settings, "revoke", revoked_id).returncode == 0
    routes = [
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/job_0123"),
        ("GET", "/v1/jobs/job_0123/speakers"),
        ("POST", "/v1/jobs"),
        ("POST", "/v1/audio/transcriptions"),
        ("POST", "/v1/audio/translations"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/whisper-1"),
    ]
    wrong = [
        ({}, "missing_api_key"),
        (bearer("sfk_nothing"), "invalid_api_key"),
        (bearer(key[:-2] + "xx"), "invalid_api_key"),
        (bearer(revoked), "invalid_api_key"),
        ({"Authorization": f"Basic {key}"}, "missing_api_key"),
    ]
    for method, path in routes:
        for headers, code in wrong:
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == code
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert key not in response.text
    for headers in (bearer(key), {"api-key": key}, {"x-api-key": key}):
        assert client.get("/v1/models", headers=headers).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code in (200, 503)  # answered, not refused: it needs no key


def test_a_job_belongs_to_the_key_that_created_it(settings: ApiSettings, client: TestClient) -> None:
    alice, bob = new_key(settings, "alice"), new_key(settings, "bob")
    admin = new_key(settings, "ops", "--admin")
    mine = upload(client, alice)
    assert mine.status_code == 202, mine.text
    job_id = mine.json()["id"]
    theirs = upload(client, bob, SHORT).json()["id"]

    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(alice)).json()["owner"] == alice.split("_")[1]
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}?format=srt", f"/v1/jobs/{job_id}/speakers"):
        hidden = client.get(path, headers=bearer(bob))
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "job_not_found"
    undiarized = client.get(f"/v1/jobs/{job_id}/speakers", headers=bearer(alice))
    assert undiarized.status_code == 409 and undiarized.json()["error"]["code"] == "not_diarized"
    assert [j["id"] for j in client.get("/v1/jobs", headers=bearer(alice)).json()["data"]] == [job_id]
    assert [j["id"] for j in client.get("/v1/jobs", headers=bearer(bob)).json()["data"]] == [theirs]
    # Paging after another key's job is as unknown as paging after a job that does not exist.
    assert client.get("/v1/jobs", headers=bearer(bob), params={"after": job_id}).status_code == 404
    everything = client.get("/v1/jobs", headers=bearer(admin)).json()["data"]
    assert {j["id"] for j in everything} == {job_id, theirs}
    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(admin)).status_code == 200


def test_revoking_a_key_stops_it_at_once_while_the_api_runs(settings: ApiSettings, client: TestClient) -> None:
    key = new_key(settings, "leaving")
    assert client.get("/v1/models", headers=bearer(key)).status_code == 200
    listed = cli(settings, "list")
    assert "leaving" in listed.stdout and key.split("_")[2] not in listed.stdout  # never the secret
    assert cli(settings, "revoke", key.split("_")[1]).returncode == 0
    assert client.get("/v1/models", headers=bearer(key)).status_code == 401
    assert "leaving" not in cli(settings, "list").stdout
    assert "revoked" in cli(settings, "list", "--all").stdout
    assert cli(settings, "revoke", "nope").returncode == 1


def test_requests_per_minute_are_limited_per_key_across_replicas(settings: ApiSettings) -> None:
    limited = new_key(settings, "busy", "--requests-per-minute", "4")
    other = new_key(settings, "quiet", "--requests-per-minute", "4")
    second = settings.model_copy(update={"materialiser_group_id": settings.materialiser_group_id + "-2"})
    with TestClient(create_app(settings)) as one, TestClient(create_app(second)) as two:
        statuses = [c.get("/v1/models", headers=bearer(limited)).status_code for c in (one, two, one, two)]
        assert statuses == [200] * 4
        refused = two.get("/v1/models", headers=bearer(limited))
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and error["param"] == "requests_per_minute"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert one.get("/v1/models", headers=bearer(other)).status_code == 200


def test_audio_minutes_per_day_are_a_quota_and_a_refusal_costs_nothing(
    settings: ApiSettings, client: TestClient
) -> None:
    key = new_key(settings, "metered", "--audio-minutes-per-day", "0.3")  # 18 s
    assert upload(client, key).status_code == 202  # 11 s
    refused = upload(client, key)  # 11 more would be 22 s
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["param"] == "audio_minutes_per_day"
    assert int(refused.headers["retry-after"]) > 3600
    assert upload(client, key, SHORT).status_code == 202  # 4 s still fit: the refused 11 s were not charged
    sync = upload(client, key, JFK, route="/v1/audio/transcriptions", model="whisper-1")
    assert sync.status_code == 429 and sync.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(client.get("/v1/jobs", headers=bearer(key)).json()["data"]) == 2


def test_content_is_sniffed_and_probed_before_anything_is_kept(settings: ApiSettings, tmp_path: Path) -> None:
    key = new_key(settings, "careful")
    with TestClient(create_app(settings.model_copy(update={"max_audio_seconds": 10.0}))) as client:
        disguised = client.post(
            "/v1/jobs", headers=bearer(key), files={"file": ("speech.wav", b"RIFF....WAVEfmt " * 64, "audio/wav")}
        )
        assert disguised.status_code == 400
        assert disguised.json()["error"]["code"] == "undecodable_audio"
        assert disguised.json()["error"]["param"] == "file"
        too_long = upload(client, key)  # 11 s against a 10 s limit
        assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "audio_too_long"
        renamed = client.post(
            "/v1/jobs", headers=bearer(key), files={"file": ("notes.txt", SHORT.read_bytes(), "text/plain")}
        )
        assert renamed.status_code == 202, renamed.text  # what it is counts, not what it is called
        assert len(client.get("/v1/jobs", headers=bearer(key)).json()["data"]) == 1
    stored = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert len(stored) == 1


def test_authentication_can_be_turned_off_for_local_use(settings: ApiSettings) -> None:
    open_settings = settings.model_copy(
        update={"auth": AuthSettings(enabled=False), "limits": LimitSettings(requests_per_minute=None)}
    )
    with TestClient(create_app(open_settings)) as client:
        assert client.get("/v1/models").status_code == 200
        accepted = client.post("/v1/jobs", files={"file": (JFK.name, JFK.read_bytes())})
        assert accepted.status_code == 202
        assert client.get(f"/v1/jobs/{accepted.json()['id']}").json()["owner"] is None
