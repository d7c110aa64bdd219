"""The topic catalog: the one place that names Wayfinder's Kafka topics.

Every producer, processor, applier and the CLI look topics up here by alias. Compacted
topics are tables (key = entity id, value = full state, tombstone = deleted); the others
are append-only logs.

Topic names live under a namespace (default ``wayfinder``), so one Kafka can carry several
Mesos clusters side by side (and each test its own): ``<namespace>.mesos.tasks``.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.history import ChangeEvent
from schemas.dns import RecordSet
from schemas.haproxy import Service
from schemas.l4lb import Vip
from schemas.marathon import App, AppTask
from schemas.overlay import Lease
from schemas.mesos import Agent, Cluster, Framework, Task
from schemas.rejections import Rejection
from schemas.status import Mark

# Bump when a value type changes incompatibly; it travels in every record's headers.
SCHEMA_VERSION = 1
DEFAULT_NAMESPACE = "wayfinder"


@dataclass(frozen=True)
class Topic:
    alias: str
    name: str
    key: str
    value_type: type
    compacted: bool
    partitions: int
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    description: str

    @property
    def schema_id(self) -> str:
        """``wayfinder.<module>.<Type>/<version>``, e.g. ``wayfinder.mesos.Task/1``."""
        module = self.value_type.__module__.split(".")[-1]
        return f"wayfinder.{module}.{self.value_type.__name__}/{SCHEMA_VERSION}"

    @property
    def config(self) -> dict[str, str]:
        """Topic configuration to create it with."""
        if self.compacted and self.alias == "status":
            # Every writer rewrites its mark each few seconds: roll and compact often, so a
            # reader at start-up reads a handful of marks, not a day of heartbeats.
            return {
                "cleanup.policy": "compact",
                "segment.ms": "600000",
                "min.compaction.lag.ms": "0",
                "min.cleanable.dirty.ratio": "0.1",
                "delete.retention.ms": "3600000",
            }
        if self.compacted:
            return {
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": "60000",
                "delete.retention.ms": "86400000",
            }
        return {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}


_SOURCE_READERS = ("processors", "outside consumers")

# (alias, name within the namespace, key, value type, compacted, partitions, writers, readers, description)
_ENTRIES = (
    ("agents", "mesos.agents", "agent id", Agent, True, 3,
     ("producers/mesos",), _SOURCE_READERS, "Every registered Mesos agent."),
    ("frameworks", "mesos.frameworks", "framework id", Framework, True, 3,
     ("producers/mesos",), _SOURCE_READERS, "Every registered Mesos framework."),
    ("tasks", "mesos.tasks", "<framework id>/<task id>", Task, True, 3,
     ("producers/mesos",), _SOURCE_READERS,
     "Every Mesos task that has not ended; an ended task is tombstoned (its last state is in events)."),
    ("cluster", "mesos.cluster", "the constant 'cluster'", Cluster, True, 1,
     ("producers/mesos",), _SOURCE_READERS, "The leading Mesos master and the list of masters."),
    ("apps", "marathon.apps", "app id", App, True, 3,
     ("producers/marathon",), _SOURCE_READERS, "Every Marathon app."),
    ("app-tasks", "marathon.tasks", "task id", AppTask, True, 3,
     ("producers/marathon",), _SOURCE_READERS, "Every Marathon task with its health check results."),
    ("events", "events", "entity id", ChangeEvent, False, 3,
     ("producers/mesos", "producers/marathon"), ("wayfinder tail", "outside consumers"),
     "Append-only history of every change: task launches, kills, health, agents, apps."),
    ("rejections", "rejections", "source (mesos, marathon, l4lb, dns …)", Rejection, False, 1,
     ("producers/mesos", "producers/marathon", "processors/l4lb", "processors/dns", "processors/haproxy",
      "processors/overlay"), ("operators", "outside consumers"),
     "Append-only log of every input refused, and why."),
    ("vips", "l4lb.vips", "<protocol>/<vip ip>/<port>", Vip, True, 3,
     ("processors/l4lb",), ("appliers/l4lb", "wayfinder vips", "outside consumers"),
     "Every L4 virtual IP with its backends and weights; named VIPs carry their allocated IP and DNS name."),
    ("dns", "dns.records", "<name>/<type>", RecordSet, True, 3,
     ("processors/dns",), ("appliers/dns", "outside consumers"),
     "Every cluster DNS record set (Mesos-DNS and dcos-dns names): the whole set of one name and type."),
    ("haproxy", "haproxy.services", "<group>:<app id>:<service port>", Service, True, 3,
     ("processors/haproxy",), ("appliers/haproxy", "outside consumers"),
     "Every L7 service of the marathon-lb labels: one service port of one app in one LB group, with its "
     "frontend settings, vhost and path rules, health check and servers."),
    ("overlay", "overlay.leases", "<overlay>/<agent id>", Lease, True, 3,
     ("processors/overlay",), ("appliers/overlay", "wayfinder overlay", "outside consumers"),
     "Every agent's lease of every overlay network: its subnet, the Mesos and Docker halves, its VTEP "
     "addresses and MAC, the MTU; a gone agent's lease carries gone_since until the grace period ends."),
    ("status", "status", "producer/mesos, producer/marathon or processor", Mark, True, 1,
     ("producers/mesos", "producers/marathon", "processors"),
     ("processors", "appliers", "wayfinder status", "outside consumers"),
     "Readiness marks: when each producer last synced with the cluster and at which offsets, and which "
     "source positions the active processor's outputs reflect. Rewritten on a heartbeat."),
)


class Catalog:
    """The topics of one namespace."""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE):
        if not namespace or not all(c.isalnum() or c in "-_." for c in namespace):
            raise ValueError(f"a namespace is letters, digits, '-', '_' or '.', got {namespace!r}")
        self.namespace = namespace
        self.topics = tuple(Topic(alias, f"{namespace}.{name}", *rest) for alias, name, *rest in _ENTRIES)
        self._by_alias = {t.alias: t for t in self.topics}

    def topic(self, alias: str) -> Topic:
        """The topic with this catalog alias; a clear error lists the valid ones."""
        try:
            return self._by_alias[alias]
        except KeyError:
            raise KeyError(f"unknown topic alias {alias!r}; known: {', '.join(self._by_alias)}") from None

    def aliases(self) -> list[str]:
        return list(self._by_alias)

    @property
    def processor_group(self) -> str:
        """The consumer group the processors elect their active one through (its lock)."""
        return f"{self.namespace}.processor"

    @property
    def processor_transactional_id(self) -> str:
        """The active processor's transactional id: a new active one fences the old one."""
        return f"{self.namespace}.processor"


DEFAULT_CATALOG = Catalog()
