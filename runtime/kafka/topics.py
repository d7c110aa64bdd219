"""Creating Wayfinder's topics from the catalog (idempotent)."""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.kafka.client_config import passed_through
from runtime.logs import with_client_logging
from runtime.blocking import sleep_or_stop
from schemas.catalog import Catalog

log = logging.getLogger(__name__)


class NotAuthorized(Exception):
    """A secured Kafka refused this client a topic its role writes: the ACLs are missing."""


def ensure_topics(bootstrap: str, catalog: Catalog, timeout: float = 30.0, role: str | None = None) -> list[str]:
    """Create the catalog topics that do not exist yet; returns the names created.

    Replication follows the cluster: 3 where there are 3 or more brokers, else 1. On a secured
    cluster a role may create only the topics it writes; NotAuthorized when even one of those
    is refused (`role`: producer or processor, as the ACLs name them).
    """
    admin = AdminClient(with_client_logging({"bootstrap.servers": bootstrap, **passed_through()}))
    metadata = admin.list_topics(timeout=timeout)
    replication = 3 if len(metadata.brokers) >= 3 else 1
    missing = [t for t in catalog.topics if t.name not in metadata.topics]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication, config=t.config) for t in missing],
        operation_timeout=timeout,
    )
    created, others = [], []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except Exception as error:  # noqa: BLE001 - a concurrent creator is fine
            if "TOPIC_ALREADY_EXISTS" in str(error):
                continue
            # On a secured cluster a role may create only the topics it writes (and sees only
            # those it may use): another role's topic is that role's to create.
            if "AUTHORIZATION_FAILED" not in str(error):
                raise
            others.append(name)
    if refused := [name for name in others if name in _written_by(catalog, role)]:
        named = ", ".join(refused[:2]) + (f" and {len(refused) - 2} more" if len(refused) > 2 else "")
        raise NotAuthorized(f"Kafka refuses user {passed_through().get('sasl.username', '?')!r} topics it "
                            f"writes ({named}): apply the ACLs (`wayfinder kafka acls --apply`)")
    if others:
        log.debug("left to their writers to create: %s", ", ".join(others))
    _await_leaders(admin, [t.name for t in missing if t.name not in others], timeout)
    return created


def _await_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """A new topic serves reads and writes only once every partition has a leader."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        waiting = [
            name
            for name in names
            if name not in topics
            or topics[name].error is not None
            or not topics[name].partitions
            or any(p.leader < 0 for p in topics[name].partitions.values())
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without partition leaders after {timeout}s: {', '.join(waiting)}")
        time.sleep(0.1)


def partition_counts(bootstrap: str, timeout: float = 10.0) -> dict[str, int]:
    """Every topic in the cluster and its partition count (one metadata request)."""
    admin = AdminClient(with_client_logging({"bootstrap.servers": bootstrap, **passed_through()}))
    return {name: len(topic.partitions) for name, topic in admin.list_topics(timeout=timeout).topics.items()
            if topic.error is None}


def _written_by(catalog: Catalog, role: str | None) -> set[str]:
    from runtime.kafka.acls import role_of

    return {t.name for t in catalog.topics if role and any(role_of(w) == role for w in t.writers)}


async def ensure_topics_until(bootstrap: str, catalog: Catalog, stop: asyncio.Event, role: str | None = None) -> bool:
    """`ensure_topics` for a long-running command: retried while no broker answers, or while a
    secured one refuses the topics `role` writes (a process started before its Kafka, or before
    its ACLs, waits for them, and says so once per log window); False when `stop` came first."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(ensure_topics, bootstrap, catalog, 5.0, role)
            return True
        except NotAuthorized as refused:
            log.warning("%s; retrying", refused)
        except KafkaException as error:
            if error.args[0].fatal():
                raise
            log.warning("cannot reach Kafka at %s (%s); retrying", bootstrap, error.args[0].str())
        await sleep_or_stop(stop, 1.0)
    return False
