"""`--kafka-config FILE`: librdkafka properties passed through to every Kafka client.

The file is what kcat's ``-F`` reads: ``key=value`` lines, ``#`` comments, blank lines. Its
settings reach every confluent-kafka producer, consumer and admin client this process makes,
so TLS and SASL (``security.protocol``, ``ssl.ca.location``, ``sasl.mechanisms``,
``sasl.username`` …) need no Wayfinder option of their own. Every client spreads
``passed_through()`` last into its settings; that is where the file's settings join its own.

Precedence, per client: ``bootstrap.servers`` comes from the command (``--bootstrap``, else
the file's, see runtime/settings.py); the file's other settings then override Wayfinder's
tuning (``client.id``, ``linger.ms``, fetch sizes …). Settings Wayfinder's correctness rests
on (idempotence, transactions, group membership, isolation) are refused in the file, because
an operator overriding them would silently lose or duplicate records.

No path uses aiokafka or faust any more (the processor assigns partitions itself), so there
is nothing to map to their option names.

The settings are process-wide, installed once by the CLI, like librdkafka's own global
configuration: the bootstrap string is threaded through every stage, and threading a second
value beside it everywhere would only give each stage a way to forget it. Child processes
(the node's DNS workers) get them from the node's options.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

# Settings Wayfinder sets per client for correctness; why each cannot come from the file.
RESERVED = {
    "group.id": "each client names its own group (readers never join one; the election's is its lock)",
    "group.instance.id": "the election relies on members leaving and joining",
    "group.protocol": "the election relies on the classic group protocol's rebalances",
    "partition.assignment.strategy": "the election needs cooperative-sticky assignment",
    "session.timeout.ms": "set by `wayfinder process --session-timeout-ms`",
    "heartbeat.interval.ms": "derived from `wayfinder process --session-timeout-ms`",
    "enable.auto.commit": "readers never commit offsets",
    "enable.auto.offset.store": "readers never commit offsets",
    "enable.partition.eof": "followers rely on their own end-of-partition setting",
    "auto.offset.reset": "each reader chooses where it starts",
    "isolation.level": "readers must see only committed transactions",
    "enable.idempotence": "writers must not lose or duplicate records",
    "acks": "writers need acks=all",
    "request.required.acks": "writers need acks=all",
    "partitioner": "keys must land where every other writer puts them (murmur2_random)",
    "transactional.id": "each processor instance has its own, for fencing",
    "transaction.timeout.ms": "bounded by the processor's transactions",
    "message.timeout.ms": "bounded by the processor's transaction timeout",
    "delivery.timeout.ms": "bounded by the processor's transaction timeout",
    "metadata.broker.list": "use bootstrap.servers",
}

# confluent-kafka takes these as Python callables; a file can only give text.
CALLBACKS = frozenset({"error_cb", "stats_cb", "throttle_cb", "oauth_cb", "on_delivery", "on_commit",
                       "logger", "oauthbearer_token_refresh_cb"})

log = logging.getLogger(__name__)

BOOTSTRAP_KEY = "bootstrap.servers"
# The group id of every consumer that assigns its partitions itself (readers and followers):
# librdkafka wants one, and looks its coordinator up though it never joins, so on a secured
# cluster every role may DESCRIBE the groups under this prefix (runtime/kafka/acls.py).
UNJOINED_GROUP_PREFIX = "wayfinder-reader-"


def unjoined_group_id() -> str:
    return f"{UNJOINED_GROUP_PREFIX}{uuid.uuid4().hex}"
MAX_LINES = 10_000  # a properties file is short; anything longer is not one


class KafkaConfigError(ValueError):
    """The file cannot be used; the message names the file, the line and what is wrong."""


def parse_properties(text: str, source: str = "<kafka config>") -> dict[str, str]:
    """``key=value`` lines to a dict (pure). ``#`` starts a comment line; blank lines are
    skipped; whitespace around the key and the value is dropped; the value is everything
    after the first ``=`` (so it may hold ``=``, as SASL JAAS lines do). A key given twice
    is an error: the second would silently win, and that is usually a mistake in the file."""
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise KafkaConfigError(f"{source}: more than {MAX_LINES} lines; is this a properties file?")
    settings: dict[str, str] = {}
    first_line_of: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise KafkaConfigError(f"{source}:{number}: expected key=value, got {line!r}")
        if key in first_line_of:
            raise KafkaConfigError(f"{source}:{number}: {key} is already set on line {first_line_of[key]}")
        first_line_of[key] = number
        settings[key] = value
    return settings


def check_passable(settings: Mapping[str, str], source: str = "<kafka config>") -> None:
    """KafkaConfigError for a setting that Wayfinder cannot pass through (pure)."""
    for key in settings:
        if key in CALLBACKS:
            raise KafkaConfigError(f"{source}: {key} is a callback; it cannot come from a file")
        if key in RESERVED:
            raise KafkaConfigError(f"{source}: {key} cannot be set here: {RESERVED[key]}")


def load(path: str | Path) -> dict[str, str]:
    """Read, parse and check the file; KafkaConfigError says what is wrong, in one line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise KafkaConfigError(f"cannot read Kafka config {path}: {error}") from None
    settings = parse_properties(text, str(path))
    check_passable(settings, str(path))
    secret = [key for key in settings if "password" in key]
    mode = Path(path).stat().st_mode & 0o777
    if secret and mode & 0o077:
        # Said, not refused: a config-management tool may own the file's mode.
        log.warning("%s holds %s and other users may read it (mode %03o): chmod 600 it", path, secret[0], mode)
    return settings


def check_with_librdkafka(settings: Mapping[str, str], source: str = "<kafka config>") -> None:
    """Have librdkafka itself refuse what it would refuse later, deep inside a stage: an
    unknown property, a bad value, an unsupported SASL mechanism, an unreadable CA file.
    The probe clients have no bootstrap servers, so they never touch the network."""
    from confluent_kafka import Consumer, KafkaException, Producer

    probe = {key: value for key, value in settings.items() if key != BOOTSTRAP_KEY}
    probe["log_level"] = 0  # the probes have no brokers by design; do not warn about it
    try:
        Producer(probe)
        Consumer({**probe, "group.id": "wayfinder-config-check"}).close()
    except KafkaException as error:
        raise KafkaConfigError(f"{source}: librdkafka refused it: {error.args[0].str()}") from None


_installed: dict[str, str] = {}
_file_bootstrap: str | None = None
_source: Path | None = None  # the file the settings came from, watched for a rotated password
_source_stamp: tuple[int, int] | None = None
_tracked: dict[int, object] = {}  # long-lived producers, by id(): told of new SASL credentials
_credentials: tuple[int, str, str] | None = None  # (generation, username, password) once rotated
_consumer_generation: dict[int, int] = {}  # id(consumer) -> the credentials generation it has
_lock = threading.Lock()
_watcher: threading.Thread | None = None
WATCH_INTERVAL_S = 1.0
CREDENTIALS = ("sasl.username", "sasl.password")


def install(settings: Mapping[str, str], source: str | Path | None = None) -> None:
    """Use these settings (without bootstrap.servers, which the command resolves) in every
    client this process makes from now on. An empty mapping goes back to none.

    With `source`, the file they came from is watched: when it changes (`wayfinder kafka
    rotate` rewrote its password), new clients use the new settings and every tracked client
    gets the new SASL credentials for its next connection, with no restart."""
    global _installed, _file_bootstrap, _source, _source_stamp, _watcher
    check_passable(settings)
    with _lock:
        _installed = {key: value for key, value in settings.items() if key != BOOTSTRAP_KEY}
        _file_bootstrap = settings.get(BOOTSTRAP_KEY) or None
        _source = Path(source) if source is not None else None
        _source_stamp = _stamp(_source)
        if _source is not None and _watcher is None:
            _watcher = threading.Thread(target=_watch, name="kafka-config-watch", daemon=True)
            _watcher.start()


def installed_source() -> str | None:
    """The file the installed settings came from (watched), or None."""
    return str(_source) if _source is not None else None


def track(client):
    """Remember a long-lived producer so that a rotated password reaches it; returns it.
    `forget` it when it is closed. A consumer is not given new credentials from here: a
    call into a consumer that another thread polls without pause waits for a gap between
    polls that may never come (seen: a minute, with the election's consumer). Whoever polls
    a long-lived consumer calls `refresh(consumer)` between its polls instead."""
    with _lock:
        _tracked[id(client)] = client
    return client


def forget(client) -> None:
    with _lock:
        _tracked.pop(id(client), None)
        _consumer_generation.pop(id(client), None)


def refresh(consumer) -> None:
    """Give `consumer` the newest SASL credentials if it does not have them yet; cheap when it
    has (called between polls, from the thread that polls it)."""
    current = _credentials
    if current is None or _consumer_generation.get(id(consumer)) == current[0]:
        return
    consumer.set_sasl_credentials(current[1], current[2])
    _consumer_generation[id(consumer)] = current[0]


def reload_if_changed() -> bool:
    """Read the watched file again if it changed; True when its settings were taken. A file
    that no longer parses keeps the settings in use (and says why): a half-edited file must
    not take a running process off Kafka."""
    from confluent_kafka import KafkaException

    global _installed, _source_stamp, _credentials
    with _lock:
        source, stamp = _source, _stamp(_source)
        if source is None or stamp == _source_stamp:
            return False
        _source_stamp = stamp
    try:
        settings = load(source)
    except KafkaConfigError as error:
        log.warning("%s changed but cannot be used (%s); keeping its previous settings", source, error)
        return False
    fresh = {key: value for key, value in settings.items() if key != BOOTSTRAP_KEY}
    with _lock:
        rotated = any(fresh.get(key) != _installed.get(key) for key in CREDENTIALS)
        _installed = fresh
        clients = list(_tracked.values())
    updated = 0
    if rotated and all(fresh.get(key) for key in CREDENTIALS):
        generation = _credentials[0] + 1 if _credentials else 1
        _credentials = (generation, fresh["sasl.username"], fresh["sasl.password"])
        for client in clients:
            try:
                client.set_sasl_credentials(fresh["sasl.username"], fresh["sasl.password"])
                updated += 1
            except (RuntimeError, KafkaException, AttributeError) as error:
                # Closed meanwhile without forget(), or no client at all (a test's stand-in):
                # one bad entry must not keep the new password from the others.
                log.debug("could not give %r the new credentials (%s); forgotten", client, error)
                forget(client)
    log.info("%s changed: new Kafka clients use it%s", source,
             f"; new SASL credentials given to {updated} running producers, and to running "
             "consumers between their polls" if rotated else "")
    return True


def _watch() -> None:
    while True:  # a daemon thread: it ends with the process
        time.sleep(WATCH_INTERVAL_S)
        try:
            reload_if_changed()
        except Exception:  # noqa: BLE001 - the watch must outlive one bad read
            log.exception("watching the Kafka config file failed")


def _stamp(path: Path | None) -> tuple[int, int] | None:
    try:
        info = path.stat() if path is not None else None
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_ino) if info else None


def file_bootstrap() -> str | None:
    """The installed file's bootstrap.servers: the bootstrap when --bootstrap is not given."""
    return _file_bootstrap


def passed_through() -> dict[str, str]:
    """The installed file's settings, spread last into every client's settings so that they
    win over Wayfinder's tuning (never over RESERVED ones: `load` and `install` refuse those).
    bootstrap.servers is never among them: the command resolved it already."""
    return dict(_installed)
