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

BOOTSTRAP_KEY = "bootstrap.servers"
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


def install(settings: Mapping[str, str]) -> None:
    """Use these settings (without bootstrap.servers, which the command resolves) in every
    client this process makes from now on. An empty mapping goes back to none."""
    global _installed, _file_bootstrap
    check_passable(settings)
    _installed = {key: value for key, value in settings.items() if key != BOOTSTRAP_KEY}
    _file_bootstrap = settings.get(BOOTSTRAP_KEY) or None


def file_bootstrap() -> str | None:
    """The installed file's bootstrap.servers: the bootstrap when --bootstrap is not given."""
    return _file_bootstrap


def passed_through() -> dict[str, str]:
    """The installed file's settings, spread last into every client's settings so that they
    win over Wayfinder's tuning (never over RESERVED ones: `load` and `install` refuse those).
    bootstrap.servers is never among them: the command resolved it already."""
    return dict(_installed)
