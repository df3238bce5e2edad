"""What Prometheus sees of a running stack, and that the dashboard and alert rules ask only for what exists."""

from __future__ import annotations

import json
import re
import time

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.audio import SHARED_AUDIO
from tests.support.keys import bearer
from tests.support.stack import REPO, RunningStack, create_key

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def names(text: str) -> set[str]:
    """Every series name a family declares, observed yet or not (a labelled counter has no series until used)."""
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    return {family.name + suffix for family in text_string_to_metric_families(text) for suffix in suffixes}


def total(found: Samples, name: str, **labels: str) -> float:
    """Sum over the series of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


def test_a_finished_job_shows_in_the_api_and_worker_metrics(stack: RunningStack) -> None:
    job = stack.wait(stack.submit(SHARED_AUDIO / "jfk.flac").json()["id"])
    assert job["status"] == "completed"
    api = samples(stack.get("/metrics").text)
    assert total(api, "scribeflow_jobs", status="completed") >= 1
    assert total(api, "scribeflow_audio_transcribed_seconds_total", language="en") >= 11
    assert total(api, "scribeflow_detected_languages_total", language="en") >= 1
    assert total(api, "scribeflow_job_realtime_factor_count") >= 1
    assert total(api, "scribeflow_job_queue_wait_seconds_count") >= 1
    assert total(api, "scribeflow_http_requests_total", route="/v1/jobs", method="POST", status="202") >= 1

    worker = samples(stack.worker_metrics(0))
    assert total(worker, "scribeflow_model_load_seconds") > 0
    assert total(worker, "scribeflow_batch_chunks_count") >= 1
    assert total(worker, "scribeflow_chunks_total", outcome="transcribed") >= 1
    assert total(worker, "scribeflow_decoded_audio_seconds_total") >= 10
    assert total(worker, "scribeflow_jobs_split_total") >= 1

    # Every chunk was decoded and committed: nothing waits for the transcribe agent.
    deadline = time.monotonic() + 30
    while True:
        lag = samples(stack.get("/metrics").text)
        group = ("group", "scribeflow-worker-transcribe")
        transcribe = [v for (n, ls), v in lag.items() if n == "scribeflow_consumer_lag" and group in ls]
        if (transcribe and sum(transcribe) == 0) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert transcribe and sum(transcribe) == 0, transcribe


def test_dashboard_and_alerts_use_only_metrics_that_exist(stack: RunningStack) -> None:
    exposed = names(stack.get("/metrics").text) | names(stack.worker_metrics(0))
    worker_source = (REPO / "processors" / "metrics.py").read_text()
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((REPO / "deploy" / "grafana" / "scribeflow.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"scribeflow_[a-z_]+", expr)}
    # The GPU gauges exist only where NVML finds a GPU; they must at least be the worker's.
    gpu = {name for name in used if name.startswith("scribeflow_gpu_")}
    assert all(f'"{name}"' in worker_source for name in gpu)
    assert used - gpu <= exposed, sorted(used - gpu - exposed)
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert {job["job_name"] for job in prometheus["scrape_configs"]} == {"scribeflow-api", "scribeflow-worker"}
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_a_job_scored_against_its_reference_shows_in_accuracy_and_metrics(stack: RunningStack) -> None:
    job = stack.wait(stack.submit(SHARED_AUDIO / "jfk.flac").json()["id"])
    assert job["status"] == "completed"
    review = [j["id"] for j in stack.get("/v1/review", params={"limit": 100}).json()["data"]]
    assert job["id"] in review  # the stack samples every job for review

    other = bearer(create_key(stack.env, "outsider"))
    reference = {
        "text": "And so my fellow Americans, ask not what your country can do for you, ask what you can do "
        "for your country."
    }
    assert stack.post(f"/v1/jobs/{job['id']}/reference", json=reference, headers=other).status_code == 404
    assert stack.post(f"/v1/jobs/{job['id']}/reference", json={"text": ""}).status_code == 400
    scored = stack.post(f"/v1/jobs/{job['id']}/reference", json=reference)
    assert scored.status_code == 200, scored.text
    score = scored.json()
    assert score["reference_words"] == 22 and score["wer"] < 0.1 and score["language"] == "en"
    assert job["id"] not in [j["id"] for j in stack.get("/v1/review", params={"limit": 100}).json()["data"]]

    report = stack.get("/v1/accuracy", params={"days": 1}).json()
    group = next(g for g in report["data"] if g["language"] == "en")
    assert group["jobs"] >= 1 and group["reference_words"] >= 22 and 0 <= group["wer"] < 0.2
    assert stack.get("/v1/accuracy", headers=other).json()["data"] == []  # not the outsider's jobs
    found = samples(stack.get("/metrics").text)
    assert total(found, "scribeflow_job_wer_count", language="en") >= 1
    assert total(found, "scribeflow_scored_reference_words_total", language="en") >= 22

    queued = stack.submit(SHARED_AUDIO / "jfk.flac").json()["id"]
    early = stack.post(f"/v1/jobs/{queued}/reference", json=reference)
    assert early.status_code in (200, 409)  # 409 unless it already finished
    if early.status_code == 409:
        assert early.json()["error"]["code"] == "job_not_completed"
    stack.wait(queued)
