"""A local Apache Kafka cluster (KRaft, every node broker+controller) on loopback, no Docker.

A cluster directory holds: cluster.json (cluster id, broker count and base port, fixed at the
first `up`; the base port moves on an `up` with another one while no broker of the directory
runs, the data staying: see `_layout`), log4j2.properties,
broker-N/{server.properties,data/,broker.log}, broker-N.pid while broker N runs, and `bootstrap`
while the cluster runs. Broker N listens PLAINTEXT on base_port + 2*(N-1), CONTROLLER on +1.
"""

from __future__ import annotations

import base64
import fcntl
import json
import secrets
import signal
import time
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.kafka import node, secure
from runtime.kafka.install import install, read_classpath
from runtime.kafka.node import KafkaClusterError

__all__ = ["DEFAULT_DIR", "KafkaClusterError", "bootstrap_of", "bootstrap_servers", "down",
           "kill_broker", "start_broker", "status", "up"]

DEFAULT_DIR = Path(".wayfinder/kafka")
DEFAULT_BASE_PORT = 29092
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
BIND_RETRIES = 5  # starts of one broker that lost its port to a self-connect (node.await_ports)


def up(dir: Path = DEFAULT_DIR, brokers: int = 1, base_port: int = DEFAULT_BASE_PORT,
       heap: str = "384m", timeout: float = READY_TIMEOUT_S, secured: bool | None = None,
       reauth_after_s: float | None = None) -> str:
    """Start the cluster in `dir` (only its brokers that are down); return its bootstrap servers.

    Returns once every broker answers on its own listener with metadata listing all brokers, and
    a topic with a replica on every broker was created and deleted.

    `secured` chooses TLS, SCRAM users and the authorizer (runtime/kafka/secure.py) for a new
    directory; None keeps what the directory holds. A directory's storage is formatted for one
    or the other, so a plain directory cannot become a secured one. `reauth_after_s` (secured
    only) is how long a SASL session lasts before the client must prove its password again;
    None keeps what the directory holds (secure.REAUTH_AFTER_S at first).
    """
    if brokers < 1:
        raise ValueError("brokers must be >= 1")
    dir = Path(dir).resolve()
    dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with _locked(dir):
        held = _read_layout(dir)
        if reauth_after_s is not None and not (held.get("secured") if held else secured):
            # Refused before _layout, which would make a new directory a plain one for good.
            raise KafkaClusterError(f"re-authentication is a setting of a secured cluster (--secure); {dir} "
                                    f"{'holds a plain one' if held else 'would be plain'}")
        layout = _layout(dir, brokers, base_port, secured)
        if reauth_after_s is not None and reauth_after_s != layout.get("reauth_after_s"):
            # The setting lives in server.properties, which only a broker's start reads.
            if running := [i for i in _node_ids(dir) if node.pid_of(dir, i) is not None]:
                raise KafkaClusterError(f"brokers {running} of {dir} are running: stop them (`wayfinder kafka "
                                        "down`) to change how often clients re-authenticate")
            layout["reauth_after_s"] = reauth_after_s
            _write_layout(dir, layout)
        bootstrap = bootstrap_servers(base_port, brokers)
        overrides, format_args = None, []
        if layout.get("secured"):
            broker = secure.prepare(dir, bootstrap)
            reauth = layout.get("reauth_after_s", secure.REAUTH_AFTER_S)
            overrides = lambda port: secure.broker_settings(broker, port, reauth)  # noqa: E731
            # The passwords go on StorageTool's command line (it has no other way to take them),
            # visible in ps for the second it runs; every one is also in a 0600 file here.
            format_args = secure.scram_format_args(secure.users(dir, broker))
        down_ids = [i for i in range(1, brokers + 1) if node.pid_of(dir, i) is None]
        starts: dict[int, int] = {}  # node id -> offset in its log where this start's output begins
        retries = dict.fromkeys(down_ids, BIND_RETRIES)
        classpath = read_classpath(install()) if down_ids else ""

        def retry_bind(node_id: int) -> bool:
            # A port free when checked can be lost before the JVM binds it (node.await_ports).
            log = dir / f"broker-{node_id}" / "broker.log"
            if retries.get(node_id, 0) <= 0 or (
                    b"Address already in use" not in node.log_since(log, starts[node_id])):
                return False
            retries[node_id] -= 1
            node.await_ports(layout, node_id, deadline)
            starts[node_id] = node.start(dir, classpath, node_id, heap)
            return True

        try:
            if down_ids:
                node.write_configs(dir, layout, overrides)
                node.format_storage(dir, classpath, layout["cluster_id"], down_ids, format_args)
            for i in down_ids:
                node.await_ports(layout, i, deadline)
                starts[i] = node.start(dir, classpath, i, heap)
            _wait_ready(dir, layout, deadline, timeout, retry_bind)
        except BaseException:
            # Brokers that never became ready serve no one: stop those this call started (the
            # error carries their log tails; the logs and data stay). Ctrl-C lands here too.
            for i in starts:
                kill_broker(dir, i)
            raise
        (dir / "bootstrap").write_text(bootstrap + "\n")
        return bootstrap


def down(dir: Path = DEFAULT_DIR, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop every broker and keep all data. SIGTERM each in turn while the nodes still running
    hold a quorum; a node without one never finishes its controlled shutdown (it waits for a
    controller that cannot commit), so it gets SIGKILL, as does any node past `timeout`."""
    dir = Path(dir).resolve()
    if not dir.is_dir():
        return
    with _locked(dir):
        nodes = list(_node_ids(dir))
        running = [p for i in reversed(nodes) if (p := node.pid_of(dir, i)) is not None]
        deadline = time.monotonic() + timeout
        for k, pid in enumerate(running):
            quorum = (len(running) - k) * 2 > len(nodes)
            node.send_signal(pid, signal.SIGTERM if quorum else signal.SIGKILL)
            if not node.wait_gone(pid, deadline - time.monotonic()):
                node.send_signal(pid, signal.SIGKILL)
                node.wait_gone(pid, 10.0)
        for i in nodes:
            (dir / f"broker-{i}.pid").unlink(missing_ok=True)
        (dir / "bootstrap").unlink(missing_ok=True)


def bootstrap_of(dir: Path = DEFAULT_DIR) -> str | None:
    """The bootstrap string of the cluster running in `dir`, or None when none of it runs."""
    dir = Path(dir).resolve()
    path = dir / "bootstrap"
    if not path.is_file() or not any(node.pid_of(dir, i) for i in _node_ids(dir)):
        return None
    return path.read_text().strip()


def status(dir: Path = DEFAULT_DIR) -> list[dict]:
    """One entry per broker of the cluster in `dir`: node id, listener, pid (None if down), log."""
    dir = Path(dir).resolve()
    layout = _read_layout(dir)
    return [{"node_id": i, "listener": f"127.0.0.1:{node.client_port(layout['base_port'], i)}",
             "pid": node.pid_of(dir, i), "log": str(dir / f"broker-{i}" / "broker.log")}
            for i in _node_ids(dir)] if layout else []


def kill_broker(dir: Path, node_id: int) -> None:
    """SIGKILL one broker: a crash, not a clean shutdown (for failover tests)."""
    dir = Path(dir).resolve()
    pid = node.pid_of(dir, node_id)
    if pid is not None:
        node.send_signal(pid, signal.SIGKILL)
        node.wait_gone(pid, 10.0)
    (dir / f"broker-{node_id}.pid").unlink(missing_ok=True)


def start_broker(dir: Path, node_id: int, heap: str = "384m",
                 timeout: float = READY_TIMEOUT_S) -> str:
    """Restart one broker and wait until the whole cluster serves again."""
    layout = _read_layout(Path(dir).resolve())
    if layout is None or node_id not in _node_ids(Path(dir).resolve()):
        raise KafkaClusterError(f"{dir} has no broker {node_id}")
    return up(dir, layout["brokers"], layout["base_port"], heap, timeout)  # starts what is down


def bootstrap_servers(base_port: int, brokers: int) -> str:
    return ",".join(f"127.0.0.1:{node.client_port(base_port, i)}" for i in range(1, brokers + 1))


def secured(dir: Path = DEFAULT_DIR) -> bool:
    """Whether the cluster in `dir` was made with `--secure`."""
    return bool((_read_layout(Path(dir).resolve()) or {}).get("secured"))


def admin_settings(dir: Path) -> dict[str, str]:
    """Client settings for the cluster's administrator: none for a plain cluster, the admin
    role's TLS and SCRAM settings for a secured one (without bootstrap.servers)."""
    return secure.client_settings(dir, "admin") if secured(dir) else {}


def _layout(dir: Path, brokers: int, base_port: int, secured: bool | None) -> dict:
    layout = _read_layout(dir)
    if layout is not None and secured is not None and bool(layout.get("secured")) != secured:
        # The storage holds its SCRAM users (or not) from the format on, and its data was
        # written under its old rules: start over in another directory instead.
        kind = "a secured" if layout.get("secured") else "a plain (not --secure)"
        raise KafkaClusterError(f"{dir} holds {kind} cluster: use another --dir, or stop it "
                                "and delete the dir")
    if layout is None:
        # What `kafka-storage.sh random-uuid` prints, without paying a JVM start for it; like
        # Kafka's Uuid.randomUuid, never starting with "-", which command lines read as an option.
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        layout = {"cluster_id": cluster_id, "brokers": brokers, "base_port": base_port,
                  "secured": bool(secured)}
        _write_layout(dir, layout)
    elif layout["brokers"] != brokers:
        # The formatted storage and the replication factors are bound to the broker count.
        raise KafkaClusterError(
            f"{dir} holds a {layout['brokers']}-broker cluster, not {brokers}: use another --dir,"
            " or stop it and delete the dir")
    elif layout["base_port"] != base_port:
        # A start that failed on a busy port must be retried on another one without losing the
        # directory. Ports live only in the configs (listeners, static quorum voters), which
        # `up` rewrites before it starts anything; the data and the cluster id stay, and each
        # broker registers its new listener when it starts. A running broker would keep
        # serving, and voting, on the old ports: refuse then.
        if running := [i for i in _node_ids(dir) if node.pid_of(dir, i) is not None]:
            raise KafkaClusterError(
                f"{dir} runs on base port {layout['base_port']} (broker {running[0]} is up): "
                f"`wayfinder kafka down --dir {dir}` first to move it to {base_port}")
        layout = {**layout, "base_port": base_port}
        _write_layout(dir, layout)
        (dir / "bootstrap").unlink(missing_ok=True)
    return layout


def _write_layout(dir: Path, layout: dict) -> None:
    # Through a rename: a crash mid-write must not leave a directory no `up` can read.
    staged = dir / "cluster.json.new"
    staged.write_text(json.dumps(layout, indent=2) + "\n")
    staged.replace(dir / "cluster.json")


def _read_layout(dir: Path) -> dict | None:
    path = dir / "cluster.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _node_ids(dir: Path) -> range:
    layout = _read_layout(dir)
    return range(1, layout["brokers"] + 1) if layout else range(0)


def _wait_ready(dir: Path, layout: dict, deadline: float, timeout: float, retry_bind) -> None:
    ids = range(1, layout["brokers"] + 1)
    ports = [node.client_port(layout["base_port"], i) for i in ids]
    # log_level 0: "connection refused" while the JVMs start is expected, not worth printing.
    admin = AdminClient({"bootstrap.servers": bootstrap_servers(layout["base_port"], len(ids)),
                         "log_level": 0, **admin_settings(dir)})
    last = "no answer yet"
    while time.monotonic() < deadline:
        dead = [i for i in ids if node.pid_of(dir, i) is None and not retry_bind(i)]
        if dead:
            raise KafkaClusterError(f"broker {dead} exited during start-up" + _tails(dir, dead))
        wait = min(2.0, max(0.5, deadline - time.monotonic()))
        try:
            # A broker opens its client port only once registered and unfenced, so a listening
            # port proves that process serves. Metadata alone does not: a killed broker stays
            # listed, and even gets new replicas, until its session times out.
            if closed := [p for p in ports if not node.serving(p)]:
                raise KafkaException(f"port {closed[0]} not accepting connections")
            md = admin.list_topics(timeout=wait)
            if md.cluster_id != layout["cluster_id"]:
                raise KafkaClusterError(f"the ports of {dir} are served by another cluster "
                                        f"({md.cluster_id}): stop it first")
            if set(md.brokers) != set(ids):
                raise KafkaException(f"metadata lists brokers {sorted(md.brokers)}")
            _round_trip(admin, len(ids), wait * 5)
            return
        except (KafkaException, TimeoutError) as exc:  # futures time out with TimeoutError
            last = str(exc) or type(exc).__name__
        time.sleep(0.2)
    raise KafkaClusterError(f"cluster in {dir} not ready after {timeout:.0f} s ({last})"
                            + _tails(dir, ids))


def _round_trip(admin: AdminClient, replicas: int, timeout: float) -> None:
    """Create and delete a topic with a replica on every broker: the controller works and every
    broker is unfenced and takes partitions. Being listed in metadata proves neither."""
    name = f"wayfinder-probe-{secrets.token_hex(4)}"
    admin.create_topics([NewTopic(name, 1, replicas)], operation_timeout=timeout,
                        request_timeout=timeout)[name].result(timeout)
    admin.delete_topics([name], operation_timeout=timeout,
                        request_timeout=timeout)[name].result(timeout)


def _tails(dir: Path, ids, lines: int = 30) -> str:
    out = []
    for i in ids:
        log = dir / f"broker-{i}" / "broker.log"
        text = log.read_text(errors="replace").splitlines()[-lines:] if log.is_file() else []
        out.append(f"\n--- tail of {log} ---\n" + "\n".join(text))
    return "".join(out)


@contextmanager
def _locked(dir: Path):
    # Two `up`s on one directory (two terminals, two test sessions) must not both start brokers.
    with open(dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
