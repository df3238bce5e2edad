"""Prometheus metrics of the API process, served at `/metrics` (with a key, like every route but the probes).

HTTP traffic by route template and status, with latency; jobs by state, read from the job store at scrape time;
what the materialiser sees jobs do (queue wait, times realtime, audio seconds and languages of completed jobs); rate
limit refusals; and the consumer lag of every group (`api.queue_depth`). Each app has its own registry, so two
apps in one process (tests, replicas) never collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.jobstore import JobStore, Transition
from schemas import JobScore, JobStatus

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
WER_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0)
SPEED_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)


class _JobsByState(Collector):
    def __init__(self, jobs: JobStore) -> None:
        self._jobs = jobs

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily("scribeflow_jobs", "Jobs in the job store by state", labels=["status"])
        counts = self._jobs.count_by_status()
        for status in JobStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        yield family


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        self.requests = Counter(
            "scribeflow_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "scribeflow_http_request_duration_seconds",
            "Time to the end of the response, by method and route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "scribeflow_rate_limited_requests",
            "Requests refused with 429, by the limit they hit",
            ["limit"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "scribeflow_job_queue_wait_seconds",
            "From a job's acceptance until a worker started on it",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.realtime = Histogram(
            "scribeflow_job_realtime_factor",
            "Seconds of audio per second from a job's acceptance to its completion",
            ["model"],
            buckets=SPEED_BUCKETS,
            registry=r,
        )
        self.audio = Counter(
            "scribeflow_audio_transcribed_seconds",
            "Seconds of audio in completed jobs",
            ["model", "language"],
            registry=r,
        )
        self.languages = Counter(
            "scribeflow_detected_languages", "Completed jobs by language", ["language"], registry=r
        )
        self.wer = Histogram(
            "scribeflow_job_wer",
            "Word error rate of jobs scored against a reference",
            ["model", "language"],
            buckets=WER_BUCKETS,
            registry=r,
        )
        self.reference_words = Counter(
            "scribeflow_scored_reference_words",
            "Words of the references jobs were scored against",
            ["model", "language"],
            registry=r,
        )
        self.word_errors = Counter(
            "scribeflow_scored_word_errors",
            "Substituted, deleted and inserted words in scored jobs (over reference words: WER)",
            ["model", "language"],
            registry=r,
        )
        self.jobs_finished = Counter(
            "scribeflow_jobs_finished", "Jobs that reached a final state", ["status"], registry=r
        )

    def jobs_collector(self, jobs: JobStore) -> Collector:
        return _JobsByState(jobs)

    def scored(self, score: JobScore) -> None:
        self.wer.labels(score.model, score.language).observe(score.wer)
        self.reference_words.labels(score.model, score.language).inc(score.reference_words)
        errors = score.substitutions + score.deletions + score.insertions
        self.word_errors.labels(score.model, score.language).inc(errors)

    def transition(self, moved: Transition) -> None:
        """What the materialiser saw a job do."""
        if moved.status is JobStatus.PROCESSING:
            self.queue_wait.observe(max(0.0, (moved.at - moved.created_at).total_seconds()))
        elif moved.status is JobStatus.COMPLETED:
            model, language = moved.model or "unknown", moved.language or "unknown"
            self.jobs_finished.labels("completed").inc()
            self.languages.labels(language).inc()
            if moved.duration:
                self.audio.labels(model, language).inc(moved.duration)
                elapsed = (moved.at - moved.created_at).total_seconds()
                if elapsed > 0:
                    self.realtime.labels(model).observe(moved.duration / elapsed)
        elif moved.status is JobStatus.FAILED:
            self.jobs_finished.labels("failed").inc()


class HttpMetrics:
    """ASGI middleware: counts every response by its route template (never the raw path, whose ids would make a
    series per job) and times it to the last byte sent."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
