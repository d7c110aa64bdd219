"""The local Apache Kafka that `wayfinder kafka` provisions, exercised with the clients the
pipeline uses: confluent-kafka (producers), aiokafka (faust's driver) and a faust worker."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
import uuid
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
CLI_BASE_PORT = 30094  # a second single-broker cluster, beside the session's on 30092
# The producer settings of ARCHITECTURE.md: idempotent, acks=all, Java/faust key placement.
PRODUCER = {"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random",
            "compression.type": "zstd", "linger.ms": 5, "message.timeout.ms": 60000}
RECORDS = [  # (key, value, headers); the last one is a tombstone, which still carries headers
    (f"app-{i}".encode(), f'{{"id": "app-{i}", "instances": {i}}}'.encode(),
     [("schema", b"app/1"), ("trace", f"t{i}".encode())]) for i in range(12)
] + [(b"app-3", None, [("schema", b"app/1"), ("trace", b"t-del")])]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(bootstrap: str, name: str, partitions: int = 3, replicas: int = 1, **config) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, replicas, config=config)],
                        operation_timeout=30)[name].result(30)


def _describe(bootstrap: str, topic: str, timeout: float = 15.0) -> dict:
    """The topic's config. CreateTopics returns once the controller committed the topic; each
    broker learns of it a moment later, and the one asked may not know it yet: retry."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return {k: v.value for k, v in admin.describe_configs([resource])[resource]
                    .result(timeout).items()}
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or \
                    time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _metadata(bootstrap: str, topic: str, brokers: list[int], timeout: float = 15.0):
    """Cluster metadata once it lists exactly `brokers` and led partitions of `topic` (brokers
    apply metadata changes a moment after the controller commits them)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(timeout=10)
        parts = md.topics[topic].partitions if topic in md.topics else {}
        if sorted(md.brokers) == brokers and parts and all(p.leader >= 0 for p in parts.values()):
            return md
        assert time.monotonic() < deadline, f"brokers {sorted(md.brokers)}, partitions {parts}"
        time.sleep(0.2)


def _produce(bootstrap: str, topic: str, records) -> list:
    """Produce and flush; return (partition, error) per record, in delivery order."""
    delivered = []
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    for key, value, headers in records:
        producer.produce(topic, key=key, value=value, headers=headers,
                         on_delivery=lambda err, msg: delivered.append((msg.partition(), err)))
    assert producer.flush(90) == 0, "records still queued after 90 s"
    return delivered


def _consume(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("g"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got, deadline = [], time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg)
    finally:
        consumer.close()
    assert len(got) == count, f"consumed {len(got)} of {count} records within {timeout} s"
    return got


def test_cli_up_prints_bootstrap_last_and_down_keeps_data(tmp_path):
    cli = [sys.executable, "-m", "cli.kafka"]
    kafka_dir = tmp_path / "kafka"
    run = dict(cwd=REPO, capture_output=True, text=True, timeout=150)
    try:
        up = subprocess.run([*cli, "up", "--dir", str(kafka_dir),
                             "--base-port", str(CLI_BASE_PORT)], **run)
        assert up.returncode == 0, up.stderr
        assert up.stdout.splitlines()[-1] == f"127.0.0.1:{CLI_BASE_PORT}"
        assert "starting" in up.stderr  # progress goes to stderr, the result alone to stdout
        bootstrap = up.stdout.splitlines()[-1]
        topic = _name("kept")
        _create(bootstrap, topic, partitions=1)
        assert [err for _, err in _produce(bootstrap, topic, RECORDS[:1])] == [None]

        down = subprocess.run([*cli, "down", "--dir", str(kafka_dir)], **run)
        assert down.returncode == 0, down.stderr
        assert not list(kafka_dir.glob("*.pid")) and not (kafka_dir / "bootstrap").exists()
        assert (kafka_dir / "broker-1" / "data" / "meta.properties").is_file()
        assert (kafka_dir / "broker-1" / "data" / f"{topic}-0").is_dir()
        status = subprocess.run([*cli, "status", "--dir", str(kafka_dir)], **run)
        assert status.returncode == 3 and "stopped" in status.stdout

        # A bare `up` restarts the same cluster (shape read from the dir); the record is there.
        again = subprocess.run([*cli, "up", "--dir", str(kafka_dir)], **run)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[-1] == bootstrap
        (msg,) = _consume(bootstrap, topic, 1)
        assert (msg.key(), msg.value()) == RECORDS[0][:2]
    finally:
        subprocess.run([*cli, "down", "--dir", str(kafka_dir)], **run)


def test_compacted_topic_is_created_as_declared(kafka_bootstrap):
    topic = _name("apps")
    _create(kafka_bootstrap, topic, **{"cleanup.policy": "compact", "min.compaction.lag.ms": "0"})
    config = _describe(kafka_bootstrap, topic)
    assert config["cleanup.policy"] == "compact"
    assert config["min.compaction.lag.ms"] == "0"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3


def test_confluent_round_trip_with_headers_tombstone_and_java_partitioning(kafka_bootstrap):
    topic = _name("tasks")
    _create(kafka_bootstrap, topic, **{"cleanup.policy": "compact"})
    delivered = _produce(kafka_bootstrap, topic, RECORDS)
    assert [err for _, err in delivered] == [None] * len(RECORDS)

    got = _consume(kafka_bootstrap, topic, len(RECORDS))
    assert sorted((m.key(), m.value(), m.headers()) for m in got if m.value() is not None) == \
        sorted(r for r in RECORDS if r[1] is not None)
    (tombstone,) = [m for m in got if m.value() is None]
    assert tombstone.key() == b"app-3" and tombstone.headers() == RECORDS[-1][2]
    # Same key, same partition: the tombstone comes after the record it deletes.
    app3 = [m.value() for m in got if m.key() == b"app-3"]
    assert app3 == [RECORDS[3][1], None]
    # murmur2_random places keys where aiokafka/faust (and Java) do: co-partitioning holds.
    murmur2 = DefaultPartitioner()
    for m in got:
        assert m.partition() == murmur2(m.key(), [0, 1, 2], [0, 1, 2]), m.key()


async def test_aiokafka_reads_zstd_records_from_confluent(kafka_bootstrap):
    topic = _name("zstd")
    _create(kafka_bootstrap, topic)
    await asyncio.to_thread(_produce, kafka_bootstrap, topic, RECORDS)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got = []
    try:
        async with asyncio.timeout(60):
            while len(got) < len(RECORDS):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(batch)
    finally:
        await consumer.stop()
    def order(record):  # a tombstone's value None does not compare with bytes
        return record[0], record[1] is None, record[1] or b""

    assert sorted(((m.key, m.value, list(m.headers)) for m in got), key=order) == sorted(
        RECORDS, key=order)


async def test_faust_agent_forwards_a_record_end_to_end(kafka_bootstrap, tmp_path):
    source, sink = _name("faust-in"), _name("faust-out")
    for topic in (source, sink):
        _create(kafka_bootstrap, topic)
    app = faust.App(_name("wf-test"), broker=f"kafka://{kafka_bootstrap.split(',')[0]}",
                    web_enabled=False, store="memory://", topic_partitions=3,
                    datadir=str(tmp_path))  # default: ./<app id>-data in the working dir
    source_topic = app.topic(source, key_serializer="raw", value_serializer="raw", partitions=3)
    sink_topic = app.topic(sink, key_serializer="raw", value_serializer="raw", partitions=3)

    @app.agent(source_topic)
    async def forward(stream):
        async for key, value in stream.items():
            await sink_topic.send(key=key, value=value.upper())

    # stdout: faust's startup spinner registers an atexit print to it, which fails on pytest's
    # capture file (closed by then) unless it gets a file of its own.
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, daemon=False,
                          redirect_stdouts=False, stdout=io.StringIO())
    await asyncio.wait_for(worker.start(), 60)
    try:
        await asyncio.to_thread(_produce, kafka_bootstrap, source, [(b"k1", b"hello", [])])
        (msg,) = await asyncio.to_thread(_consume, kafka_bootstrap, sink, 1, 90)
        assert (msg.key(), msg.value()) == (b"k1", b"HELLO")
    finally:
        await asyncio.wait_for(worker.stop(), 60)


def test_three_brokers_survive_one_crash_with_acks_all(kafka_three):
    bootstrap = kafka_three.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3]
    topic = _name("replicated")
    _create(bootstrap, topic, partitions=3, replicas=3)
    assert _describe(bootstrap, topic)["min.insync.replicas"] == "2"
    partitions = _metadata(bootstrap, topic, [1, 2, 3]).topics[topic].partitions
    assert sorted(partitions) == [0, 1, 2]
    assert all(sorted(p.replicas) == [1, 2, 3] for p in partitions.values())

    before = [(f"k{i}".encode(), f"before-{i}".encode(), []) for i in range(30)]
    after = [(f"k{i}".encode(), f"after-{i}".encode(), []) for i in range(30)]
    assert [e for _, e in _produce(bootstrap, topic, before)] == [None] * 30
    kafka_three.kill(2)
    # acks=all with min.insync.replicas=2: two live replicas are enough once the controller
    # fences broker 2 (3 s session) and moves its leaderships.
    assert [e for _, e in _produce(bootstrap, topic, after)] == [None] * 30
    live = _metadata(bootstrap, topic, [1, 3]).topics[topic].partitions
    assert all(p.leader in (1, 3) and 2 not in p.isrs for p in live.values())

    got = _consume(bootstrap, topic, 60)
    assert sorted(m.value() for m in got) == sorted(v for _, v, _ in before + after)

    assert kafka_three.start(2) == bootstrap
    assert sorted(_metadata(bootstrap, topic, [1, 2, 3]).brokers) == [1, 2, 3]


def test_no_broker_yet_is_a_missing_topic_for_a_reader_not_a_crash():
    """Everything started at once: a reader whose broker is not up yet waits as for a topic
    not created yet (LookupError after its timeout), instead of dying on the transport error."""
    from runtime.kafka.reader import partitions_of
    from runtime.ports import free_port

    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "group.id": "unused",
                         "log_level": 0, "reconnect.backoff.max.ms": 200})
    try:
        started = time.monotonic()
        with pytest.raises(LookupError, match="no broker answered"):
            partitions_of(consumer, "wayfinder.status", 2.0)
        assert 1.5 <= time.monotonic() - started < 10
    finally:
        consumer.close()
