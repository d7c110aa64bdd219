"""TableFollower against a topic written in Kafka transactions: catch-up ends although the
last offsets are commit markers, and records of an aborted transaction never appear."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka import Producer

from runtime.kafka.follower import TableFollower
from runtime.kafka.topics import ensure_topics
from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka


def transaction(producer: Producer, topic: str, records: dict[str, bytes | None], commit: bool = True) -> None:
    producer.begin_transaction()
    for key, value in records.items():
        producer.produce(topic, key=key.encode(), value=value)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)


def transactional_producer(bootstrap: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"test-{uuid.uuid4().hex}",
                         "partitioner": "murmur2_random"})
    producer.init_transactions(30)
    return producer


def read_changes(follower: TableFollower, seconds: float) -> dict[str, bytes | None]:
    seen: dict[str, bytes | None] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for record in follower.changes(0.1):
            seen[record.key] = record.value
    return seen


async def test_catch_up_over_commit_markers_and_aborted_records(kafka_bootstrap):
    catalog = new_catalog()
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, catalog)
    topic = catalog.topic("dns").name  # 3 partitions
    producer = transactional_producer(kafka_bootstrap)
    transaction(producer, topic, {f"a{i}": b"1" for i in range(6)})
    transaction(producer, topic, {"a0": b"aborted", "ghost": b"aborted"}, commit=False)
    transaction(producer, topic, {"a1": None, "b": b"2"})
    follower = TableFollower(kafka_bootstrap, topic)
    try:
        started = time.monotonic()
        table = await asyncio.to_thread(follower.catch_up, 30.0)
        assert time.monotonic() - started < 10  # bounded by the markers, not by the timeout
        assert table == {"a0": b"1", "a2": b"1", "a3": b"1", "a4": b"1", "a5": b"1", "b": b"2"}
        ends = await asyncio.to_thread(follower.end_offsets)
        assert await asyncio.to_thread(follower.reached, ends)

        # Following: committed changes arrive, aborted ones never do.
        transaction(producer, topic, {"ghost": b"aborted again"}, commit=False)
        transaction(producer, topic, {"c": b"3", "a2": None})
        assert await asyncio.to_thread(read_changes, follower, 3.0) == {"c": b"3", "a2": None}
        ends = await asyncio.to_thread(follower.end_offsets)
        assert await asyncio.to_thread(follower.reached, ends)
    finally:
        follower.close()
        producer.flush(10)


async def test_catch_up_of_a_topic_holding_only_an_aborted_transaction_ends(kafka_bootstrap):
    catalog = new_catalog()
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, catalog)
    topic = catalog.topic("vips").name
    producer = transactional_producer(kafka_bootstrap)
    transaction(producer, topic, {"x": b"1", "y": b"2"}, commit=False)
    follower = TableFollower(kafka_bootstrap, topic)
    try:
        assert await asyncio.to_thread(follower.catch_up, 30.0) == {}
    finally:
        follower.close()
