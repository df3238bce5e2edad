"""Creating the pipeline's topics explicitly, with the configured partition counts."""

from __future__ import annotations

import logging

from ingest.config import KafkaSettings

log = logging.getLogger(__name__)


class TopicError(Exception):
    """A topic could not be created."""


def ensure_topics(settings: KafkaSettings, *, timeout: float = 30.0) -> list[str]:
    """Create missing topics; existing ones are left as they are. Returns the names created."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = settings.topics
    # The workers' tables keep their state in compacted changelogs: only the latest value of each key matters.
    compacted = {"cleanup.policy": "compact"}
    short_lived = {"retention.ms": str(3_600_000)}
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                config=compacted if name in names.changelogs else short_lived if name in names.live else {},
            )
            for name in (*names.streams, *names.changelogs)
        ],
        request_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as e:
            if e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TopicError(f"cannot create topic {name}: {e.args[0].str()}") from e
    if created:
        log.info("created topics %s with %d partitions", ", ".join(created), settings.partitions)
    return created
