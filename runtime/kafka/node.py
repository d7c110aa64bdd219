"""One node of the local cluster (broker and controller in one JVM): its server.properties,
its storage format, its process, and its ports. runtime/kafka/cluster.py composes nodes into a
cluster and decides when it serves."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from runtime.kafka.install import java_executable
from runtime.kafka.secure import write_secret

# C1 only: first request served in 1.7 s instead of 2.0 s on 2 cores, at the cost of peak broker
# throughput; serial GC: fewer threads for a small heap. Benchmarks that want the broker at full
# speed set WAYFINDER_KAFKA_JVM_FLAGS="" (or their own flags).
DEFAULT_JVM_FLAGS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
# The Maven jars carry no log config; without one log4j2 prints only errors.
LOG4J2 = """\
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class KafkaClusterError(RuntimeError):
    """The local cluster could not be started, reached or stopped."""


def client_port(base_port: int, node_id: int) -> int:
    """Broker N's PLAINTEXT port; its CONTROLLER port is the next one."""
    return base_port + 2 * (node_id - 1)


def write_configs(dir: Path, layout: dict, overrides=None) -> None:
    """Every broker's server.properties. `overrides(port)` gives settings that replace or join
    the plain ones (the secured cluster's listeners, TLS and SASL: runtime/kafka/secure.py)."""
    n, base = layout["brokers"], layout["base_port"]
    # 3 brokers tolerate one down with acks=all (min.insync.replicas=2); 1 broker has 1 replica.
    rf = min(n, 3)
    min_isr = 2 if rf >= 3 else 1
    voters = ",".join(f"{i}@127.0.0.1:{client_port(base, i) + 1}" for i in range(1, n + 1))
    (dir / "log4j2.properties").write_text(LOG4J2)
    for i in range(1, n + 1):
        port, node = client_port(base, i), dir / f"broker-{i}"
        (node / "data").mkdir(parents=True, exist_ok=True)
        settings = {
            "process.roles": "broker,controller", "node.id": i,
            "controller.quorum.voters": voters,  # static quorum: no --standalone, no KIP-853
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": node / "data",
            "num.partitions": 3,
            "auto.create.topics.enable": "false",  # every topic is declared by its owner
            "default.replication.factor": rf, "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            # The default 50 partitions each cost seconds at the first group join on 2 cores.
            "offsets.topic.num.partitions": 10, "transaction.state.log.num.partitions": 10,
            "group.initial.rebalance.delay.ms": 0,  # tests join groups constantly
            # The processors elect their active one through a consumer group: a 2 s session lets
            # a standby take over 2 s after the active dies (stock brokers refuse below 6 s).
            "group.min.session.timeout.ms": 1000,
            # A restarted node waits out its old registration (DUPLICATE_BROKER_REGISTRATION), and
            # a killed broker is fenced, only after this session timeout: 3 s instead of 9 s.
            "broker.session.timeout.ms": 3000, "broker.heartbeat.interval.ms": 500,
            # Compaction shows within seconds on topics that roll segments (segment.ms); a 32 MiB
            # dedupe buffer instead of 128 MiB keeps the cleaner inside a small heap.
            "log.cleaner.backoff.ms": 1000, "log.cleaner.dedupe.buffer.size": 32 << 20,
            "log.segment.bytes": 16 << 20,
        }
        settings.update(overrides(port) if overrides else {})
        # As a secret (0600): a secured broker's file holds its keystore and SCRAM passwords.
        write_secret(node / "server.properties", "".join(f"{k}={v}\n" for k, v in settings.items()))


def format_storage(dir: Path, classpath: str, cluster_id: str, ids: list[int],
                   extra_args: list[str] = ()) -> None:
    todo = [i for i in ids if not (dir / f"broker-{i}" / "data" / "meta.properties").exists()]
    procs = {i: subprocess.Popen(  # one short JVM per node (~0.8 s), side by side
        [java_executable(), *DEFAULT_JVM_FLAGS.split(), "-cp", classpath,
         # --opt=value: an id may start with "-", which "-t ID" would read as an option.
         "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
         "-c", str(dir / f"broker-{i}" / "server.properties"), *extra_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in todo}
    for i, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise KafkaClusterError(f"formatting broker {i} storage failed:\n{out[-3000:]}")


def start(dir: Path, classpath: str, node_id: int, heap: str) -> int:
    """Start one broker detached; return the offset in its log where this run's output begins."""
    node = dir / f"broker-{node_id}"
    flags = os.environ.get("WAYFINDER_KAFKA_JVM_FLAGS", DEFAULT_JVM_FLAGS).split()
    cmd = [java_executable(), f"-Xms{heap}", f"-Xmx{heap}", *flags, "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={dir / 'log4j2.properties'}",
           "-cp", classpath, "kafka.Kafka", str(node / "server.properties")]
    with open(node / "broker.log", "ab") as log:
        offset = log.seek(0, os.SEEK_END)
        # Own session: the broker outlives the CLI that started it and gets none of its signals.
        proc = subprocess.Popen(cmd, cwd=node, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    # The start time makes the pid file name this process only, even once the pid is reused.
    (dir / f"broker-{node_id}.pid").write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
    return offset


def log_since(log: Path, offset: int) -> bytes:
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read()


def await_ports(layout: dict, node_id: int, deadline: float) -> None:
    """Wait until broker `node_id`'s ports can be bound; fail at once if a server listens there.

    Test ports (39xxx) lie in Linux's ephemeral range (32768-60999): while a broker is down, a
    peer reconnecting to it can be handed the broker's own port as source port, a TCP self-connect
    (seen here, within seconds). Closed, that socket holds the port in TIME_WAIT for 60 s.
    """
    ports = [client_port(layout["base_port"], node_id) + k for k in (0, 1)]
    while busy := [p for p in ports if not bindable(p)]:
        if any(listening(p) for p in busy):
            raise KafkaClusterError(f"port {busy[0]} (broker {node_id}) is held by another "
                                    "server; another cluster? choose another --base-port")
        if time.monotonic() > deadline:
            raise KafkaClusterError(f"port {busy[0]} (broker {node_id}) is still in use")
        time.sleep(0.5)


def bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM's acceptor does
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def listening(port: int) -> bool:
    # /proc/net/tcp{,6} rows: "sl local_address(hexip:hexport) rem_address st(0A = LISTEN) ..."
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        rows = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        if any(int(r.split()[1].rsplit(":", 1)[1], 16) == port and r.split()[3] == "0A"
               for r in rows):
            return True
    return False


def serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            return s.getsockname()[1] != port  # a self-connect (see await_ports) is no server
    except OSError:
        return False


def pid_of(dir: Path, node_id: int) -> int | None:
    """The pid in broker-N.pid while that very process runs (same pid and start time)."""
    try:
        pid, started = (int(f) for f in (dir / f"broker-{node_id}.pid").read_text().split())
    except (OSError, ValueError):
        return None
    # Not the cmdline: it reads empty for a moment right after exec, which made a broker that
    # had just started look dead.
    return pid if _start_time(pid) == started and alive(pid) else None


def _start_time(pid: int) -> int | None:
    try:  # /proc/PID/stat field 22, in clock ticks since boot; fields counted after "(comm)"
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Not fully exited: its sockets may still be open. The main thread of an exiting JVM turns
    zombie while its other threads still exit, so gone means no /proc entry, or a zombie with no
    thread left."""
    try:  # when we started the broker, collect its exit status or it lingers as a zombie
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X") or len(os.listdir(f"/proc/{pid}/task")) > 1
    except (OSError, IndexError):
        return False


def send_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
