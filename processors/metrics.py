"""Prometheus metrics of one worker, on its own port (`SCRIBEFLOW_METRICS_PORT`).

Model load time, decode batches (size, time, audio), chunk outcomes, recovered stretches, jobs split, and the
GPU's utilisation and memory where NVML answers (the `nvidia-ml-py` package, part of the `gpu` extra). The
endpoint has no authentication: it is meant for the cluster's internal network, where Prometheus scrapes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class _Gpu(Collector):
    """Read at scrape time; absent when NVML is not installed or finds no GPU."""

    def __init__(self) -> None:
        self._nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception as e:  # no package, no driver, no GPU: CPU workers simply have no GPU metrics
            log.debug("no GPU metrics: %s", e)

    def collect(self) -> Iterable[Any]:
        if self._nvml is None:
            return
        nvml = self._nvml
        utilisation = GaugeMetricFamily("scribeflow_gpu_utilization_ratio", "GPU busy time, 0-1", labels=["gpu"])
        used = GaugeMetricFamily("scribeflow_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu"])
        total = GaugeMetricFamily("scribeflow_gpu_memory_total_bytes", "GPU memory", labels=["gpu"])
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            utilisation.add_metric([str(index)], rates.gpu / 100)
            used.add_metric([str(index)], memory.used)
            total.add_metric([str(index)], memory.total)
        yield from (utilisation, used, total)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        self.model_load = Gauge(
            "scribeflow_model_load_seconds", "Time the worker took to load its model", ["model", "device"], registry=r
        )
        self.batch_size = Histogram(
            "scribeflow_batch_chunks", "Chunks decoded together in one batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_jobs = Histogram(
            "scribeflow_batch_jobs", "Distinct jobs in one decoded batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "scribeflow_batch_seconds", "Time to decode one batch", buckets=SECONDS_BUCKETS, registry=r
        )
        self.audio = Counter("scribeflow_decoded_audio_seconds", "Seconds of audio decoded in chunks", registry=r)
        self.chunks = Counter("scribeflow_chunks", "Chunks by outcome", ["outcome"], registry=r)
        self.recovered = Counter(
            "scribeflow_recovered_stretches",
            "Stretches of skipped speech recovered by a decode of their own",
            registry=r,
        )
        self.voice_seconds = Histogram(
            "scribeflow_voice_embedding_seconds",
            "Time to embed the voices of one diarized chunk (what diarizing adds to a chunk's work)",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.voice_windows = Counter("scribeflow_voice_windows", "Voice windows embedded for diarized jobs", registry=r)
        self.jobs_split = Counter("scribeflow_jobs_split", "Jobs cut into chunks by this worker", registry=r)
        self.registry.register(_Gpu())

    def serve(self, port: int, host: str) -> bool:
        """Starts the endpoint; a port that is taken is logged, never fatal: transcription matters more."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            log.error("worker metrics could not listen on %s:%d: %s", host, port, e)
            return False
        log.info("worker metrics on http://%s:%d/metrics", host, port)
        return True
