"""Creating Wayfinder's topics from the catalog (idempotent)."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from schemas.catalog import Catalog


def ensure_topics(bootstrap: str, catalog: Catalog, timeout: float = 30.0) -> list[str]:
    """Create the catalog topics that do not exist yet; returns the names created.

    Replication follows the cluster: 3 where there are 3 or more brokers, else 1.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=timeout)
    replication = 3 if len(metadata.brokers) >= 3 else 1
    missing = [t for t in catalog.topics if t.name not in metadata.topics]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication, config=t.config) for t in missing],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except Exception as error:  # noqa: BLE001 - a concurrent creator is fine
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
    return created
