"""`wayfinder node --roles dns --dns-workers 2` as a real process against a real Kafka: two
worker processes share one UDP and TCP port (SO_REUSEPORT), each follows the dns topic, a
killed worker is restarted, and stopping the node (or killing it) leaves no worker behind.

SO_REUSEPORT picks a worker by a hash of the client's address and port, and dnspython opens
a socket with a fresh source port per query: so N queries in a row reach both workers
(all N on one worker has odds 2^-(N-1)), and "N answers in a row are right" means every
worker has the change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from appliers.dns.workers import WORKER_MODULE
from runtime.kafka.topics import ensure_topics
from runtime.kafka.writer import KafkaSink
from runtime.ports import free_port, free_udp_and_tcp_port
from schemas import codec
from schemas.dns import RecordSet, record_set_key
from schemas.l4lb import Backend, Vip
from schemas.headers import Observation
from schemas.status import PROCESSOR_KEY, Mark
from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka

WAYFINDER = Path(sys.executable).with_name("wayfinder")
HOST = "127.0.0.1"
SPREAD = 40  # queries from as many source ports: every worker is asked (odds of not: 2^-39)


def web(*addresses: str) -> RecordSet:
    return RecordSet("web.marathon.mesos.", "A", 60, list(addresses), "marathon", ["web.1"])


def publish(sink: KafkaSink, catalog, *record_sets: RecordSet, mark: bool = False) -> None:
    topic = catalog.topic("dns")
    headers = Observation.now().headers(topic.schema_id)
    for record_set in record_sets:
        sink.publish(topic.name, record_set_key(record_set.name, record_set.type), codec.encode(record_set), headers)
    if mark:
        now = time.time()
        status = catalog.topic("status")
        sink.publish(status.name, PROCESSOR_KEY,
                     codec.encode(Mark("processor", "test-processor", now, now, True, synced_at=now, ready=True)),
                     Observation.now().headers(status.schema_id))
    sink.flush()


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def workers_of(pid: int) -> set[int]:
    return {child for child, cmdline in children(pid).items() if WORKER_MODULE in cmdline}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def eventually(check, timeout: float = 30.0, every: float = 0.1):
    """`check()` until it stops raising AssertionError (bounded by `timeout`); its value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, dns.exception.Timeout, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(every)


def addresses(port: int, name: str = "web.marathon.mesos.", *, tcp: bool = False) -> list[str]:
    query = dns.message.make_query(name, "A")
    ask = dns.query.tcp if tcp else dns.query.udp
    reply = ask(query, HOST, port=port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(reply.rcode())
    return sorted(rr.address for rrset in reply.answer for rr in rrset)


def everywhere(port: int, expected: list[str], *, count: int = SPREAD, tcp: bool = False,
               name: str = "web.marathon.mesos.") -> None:
    """`count` queries in a row, each from a new socket, all answered `expected`."""
    for _ in range(count):
        assert addresses(port, name, tcp=tcp) == expected


class RunningNode:
    """`wayfinder node` with DNS workers, as its own process (and session, so a test that fails
    half-way still removes every process it started)."""

    def __init__(self, bootstrap: str, catalog, port: int, log: Path, workers: str = "2",
                 extra: tuple[str, ...] = ()) -> None:
        self.port = port
        self.log_path = log
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [str(WAYFINDER), "node", "--bootstrap", bootstrap, "--namespace", catalog.namespace,
             "--node-id", "test", "--agent-ip", "10.0.0.9", "--roles", "dns",
             "--dns-listen", f"{HOST}:{port}", "--dns-workers", workers, *extra],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def workers(self) -> set[int]:
        return workers_of(self.process.pid)

    def ready_workers(self) -> set[int]:
        text = self.log_path.read_text(errors="replace")
        return {pid for pid in self.workers() if f"(pid {pid}): ready" in text}

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def node_log(tmp_path):
    path = tmp_path / "node.log"
    yield path
    if path.exists():  # shown when the test fails
        sys.stderr.write(path.read_text(errors="replace")[-6000:])


@pytest.fixture
def topics(kafka_bootstrap):
    catalog = new_catalog()
    ensure_topics(kafka_bootstrap, catalog)
    sink = KafkaSink(kafka_bootstrap)
    yield catalog, sink
    sink.close()


def started(kafka_bootstrap, catalog, log: Path, extra: tuple[str, ...] = ()) -> RunningNode:
    """A node on a port free a moment ago (fixed ports collided with other clients' ephemeral ports)."""
    node = RunningNode(kafka_bootstrap, catalog, free_udp_and_tcp_port(), log, extra=extra)
    try:
        eventually(lambda: _assert_count(node.ready_workers(), 2), timeout=60)
    except BaseException:
        node.close()
        raise
    return node


def _assert_count(pids: set[int], count: int) -> set[int]:
    assert len(pids) == count, pids
    return pids


def test_two_workers_answer_udp_and_tcp_on_one_port_and_every_worker_follows_changes(kafka_bootstrap, topics, node_log):
    catalog, sink = topics
    publish(sink, catalog, web("10.0.1.5", "10.0.1.6"), mark=True)
    http_port = free_port()
    node = started(kafka_bootstrap, catalog, node_log, extra=("--dns-http", f"{HOST}:{http_port}"))
    try:
        assert node.process.poll() is None and len(node.workers()) == 2
        everywhere(node.port, ["10.0.1.5", "10.0.1.6"])
        everywhere(node.port, ["10.0.1.5", "10.0.1.6"], count=10, tcp=True)
        reply = dns.query.udp(dns.message.make_query("ready.spartan.", "A"), HOST, port=node.port, timeout=2)
        assert [rr.address for rr in reply.answer[0]] == ["127.0.0.1"]
        missing = dns.query.udp(dns.message.make_query("nothing.marathon.mesos.", "A"), HOST, port=node.port, timeout=2)
        assert missing.rcode() == dns.rcode.NXDOMAIN

        # A change reaches every worker: once one answer shows it, SPREAD in a row must too.
        publish(sink, catalog, web("10.0.1.7"))
        eventually(lambda: everywhere(node.port, ["10.0.1.7"]), timeout=30)
        everywhere(node.port, ["10.0.1.7"], count=10, tcp=True)
        for _ in range(10):  # the Mesos-DNS HTTP API shares its port too: every worker serves it
            with urllib.request.urlopen(f"http://{HOST}:{http_port}/v1/hosts/web.marathon.mesos", timeout=5) as response:
                assert json.loads(response.read()) == [{"host": "web.marathon.mesos.", "ip": "10.0.1.7"}]

        # A dns-only node follows the vips table (once, in its own process) for the VIP names,
        # and every worker answers them.
        vips = catalog.topic("vips")
        vip = Vip("tcp", "11.1.0.3", 80, [Backend("10.0.1.7", 31000, 1, "web.1")], name="/shop/web",
                  framework="marathon", dns="shopweb.marathon.l4lb.thisdcos.directory")
        sink.publish(vips.name, "tcp/11.1.0.3/80", codec.encode(vip), Observation.now().headers(vips.schema_id))
        sink.flush()
        eventually(lambda: everywhere(node.port, ["11.1.0.3"], name="shopweb.marathon.l4lb.thisdcos.directory."),
                   timeout=30)
    finally:
        node.close()


def test_a_killed_worker_is_restarted_and_serves_the_changes_since(kafka_bootstrap, topics, node_log):
    catalog, sink = topics
    publish(sink, catalog, web("10.0.2.1"), mark=True)
    node = started(kafka_bootstrap, catalog, node_log)
    try:
        before = node.workers()
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        publish(sink, catalog, web("10.0.2.2"))  # while it is gone
        # Meanwhile the survivor serves every client: the dead worker's socket left the group.
        eventually(lambda: everywhere(node.port, ["10.0.2.2"]), timeout=30)
        after = eventually(lambda: _assert_count(node.ready_workers(), 2), timeout=60)
        assert victim not in after and before - {victim} <= after
        assert node.process.poll() is None
        everywhere(node.port, ["10.0.2.2"])
        publish(sink, catalog, web("10.0.2.3"))
        eventually(lambda: everywhere(node.port, ["10.0.2.3"]), timeout=30)
        everywhere(node.port, ["10.0.2.3"], count=10, tcp=True)
        assert "restarting in" in node_log.read_text()
    finally:
        node.close()


def test_sigterm_of_the_node_stops_every_worker(kafka_bootstrap, topics, node_log):
    catalog, sink = topics
    publish(sink, catalog, web("10.0.3.1"), mark=True)
    node = started(kafka_bootstrap, catalog, node_log)
    try:
        pids = node.workers()
        node.process.send_signal(signal.SIGTERM)
        assert node.process.wait(30) == 0
        eventually(lambda: _assert_count({pid for pid in pids if alive(pid)}, 0), timeout=5)
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(dns.message.make_query("web.marathon.mesos.", "A"), HOST, port=node.port, timeout=1)
    finally:
        node.close()


def test_a_node_killed_with_sigkill_leaves_no_worker_serving(kafka_bootstrap, topics, node_log):
    catalog, sink = topics
    publish(sink, catalog, web("10.0.4.1"), mark=True)
    node = started(kafka_bootstrap, catalog, node_log)
    try:
        pids = node.workers()
        node.process.send_signal(signal.SIGKILL)  # the node only: its workers must notice
        node.process.wait(10)
        eventually(lambda: _assert_count({pid for pid in pids if alive(pid)}, 0), timeout=30)
    finally:
        node.close()
