"""`/metrics` and `/ready` of the API against the real broker: route templates, jobs by state, queue depth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api import ApiSettings, create_app
from tests.support.audio import SHARED_AUDIO
from tests.support.keys import bearer, new_key

pytestmark = pytest.mark.kafka

JFK = SHARED_AUDIO / "jfk.flac"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def keyed(settings: ApiSettings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    key = new_key(settings, "observer")
    with TestClient(create_app(settings)) as client:
        yield client, bearer(key)


def test_metrics_need_a_key_and_count_by_route_template(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = keyed
    assert client.get("/metrics").status_code == 401
    for n in range(3):
        assert client.get(f"/v1/jobs/job_{n}", headers=headers).status_code == 404
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = {"method": "GET", "route": "/v1/jobs/{job_id}"}
    assert value(text, "scribeflow_http_requests_total", **route, status="404") == 3
    assert value(text, "scribeflow_http_request_duration_seconds_count", **route) == 3
    assert "job_0" not in text  # never a series per raw path
    assert value(text, "scribeflow_http_requests_total", method="GET", route="/metrics", status="401") == 1


def test_accepted_jobs_show_as_queued_and_as_queue_depth(
    settings: ApiSettings, keyed: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = keyed
    for _ in range(2):
        accepted = client.post("/v1/jobs", headers=headers, files={"file": (JFK.name, JFK.read_bytes())})
        assert accepted.status_code == 202
    text = client.get("/metrics", headers=headers).text
    assert value(text, "scribeflow_jobs", status="queued") == 2
    assert value(text, "scribeflow_jobs", status="completed") == 0
    # No worker runs here: both requests wait in the split agent's topic.
    waiting = value(
        text,
        "scribeflow_consumer_lag",
        group="scribeflow-worker-split",
        topic=settings.kafka.topics.requests,
        partition="0",
    )
    assert waiting == 2


def test_rate_limit_refusals_are_counted(settings: ApiSettings, keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = keyed
    busy = bearer(new_key(settings, "busy", "--requests-per-minute", "2"))
    statuses = [client.get("/v1/models", headers=busy).status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    text = client.get("/metrics", headers=headers).text
    assert value(text, "scribeflow_rate_limited_requests_total", limit="requests_per_minute") == 3
    assert value(text, "scribeflow_http_requests_total", method="GET", route="/v1/models", status="429") == 3
