"""Consumer lag per group, topic and partition: how much work waits in Kafka, read from the broker at scrape time.

Lag is the partition's end offset minus the group's committed offset (the whole partition when the group has
committed nothing yet). The groups are the workers' three agents and this API's materialiser. Answers are cached
for a few seconds, so several scrapers cost the broker one round of requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ingest.config import KafkaSettings

log = logging.getLogger(__name__)

Lag = dict[tuple[str, str, int], int]


def consumer_groups(settings: KafkaSettings, worker_group: str, materialiser_group: str) -> dict[str, list[str]]:
    """Which topics each group consumes."""
    topics = settings.topics
    return {
        f"{worker_group}-split": [topics.requests],
        f"{worker_group}-transcribe": [topics.chunks],
        f"{worker_group}-transcribe-priority": [topics.chunks_priority],
        f"{worker_group}-stitch": [topics.chunk_results],
        materialiser_group: [topics.requests, topics.jobs, topics.segments],
    }


def measure_lag(admin: Any, groups: Mapping[str, list[str]], timeout: float = 5.0) -> Lag:
    """`admin`: a confluent-kafka AdminClient, kept between scrapes (each new one opens its connections anew)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    wanted = sorted({t for topics in groups.values() for t in topics})
    metadata = admin.list_topics(timeout=timeout)
    partitions = [
        TopicPartition(topic, p)
        for topic in wanted
        if topic in metadata.topics
        for p in metadata.topics[topic].partitions
    ]
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    asked = admin.list_offsets({tp: latest for tp in partitions}, request_timeout=timeout)
    ends = {(tp.topic, tp.partition): future.result(timeout).offset for tp, future in asked.items()}
    lag: Lag = {}
    for group, topics in groups.items():
        request = [ConsumerGroupTopicPartitions(group, [tp for tp in partitions if tp.topic in topics])]
        committed: dict[tuple[str, int], int] = {}
        for future in admin.list_consumer_group_offsets(request, request_timeout=timeout).values():
            for tp in future.result(timeout).topic_partitions or []:
                committed[(tp.topic, tp.partition)] = tp.offset
        for tp in partitions:
            if tp.topic in topics:
                end = ends[(tp.topic, tp.partition)]
                done = committed.get((tp.topic, tp.partition), -1)
                lag[(group, tp.topic, tp.partition)] = max(0, end - max(done, 0))
    return lag


class QueueDepth(Collector):
    def __init__(self, settings: KafkaSettings, groups: Mapping[str, list[str]], *, cache_s: float = 5.0) -> None:
        self._settings = settings
        self._groups = dict(groups)
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._at = 0.0
        self._lag: Lag = {}
        self._client: Any = None

    def _admin(self) -> Any:
        if self._client is None:
            from confluent_kafka.admin import AdminClient

            self._client = AdminClient({"bootstrap.servers": self._settings.bootstrap_servers})
        return self._client

    def lag(self) -> Lag:
        with self._lock:
            if time.monotonic() - self._at > self._cache_s:
                try:
                    self._lag = measure_lag(self._admin(), self._groups)
                except Exception as e:  # the broker being down must not break the rest of /metrics
                    log.warning("consumer lag could not be read: %s", e)
                    self._lag = {}
                self._at = time.monotonic()
            return dict(self._lag)

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily(
            "scribeflow_consumer_lag",
            "Events not yet consumed, per consumer group, topic and partition (the queue depth)",
            labels=["group", "topic", "partition"],
        )
        for (group, topic, partition), value in sorted(self.lag().items()):
            family.add_metric([group, topic, str(partition)], value)
        yield family
