"""The topic catalog: the one place that names Wayfinder's Kafka topics.

Every producer, processor, applier and the CLI look topics up here by alias. Compacted
topics are tables (key = entity id, value = full state, tombstone = deleted); the others
are append-only logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.history import ChangeEvent
from schemas.marathon import App, AppTask
from schemas.mesos import Agent, Cluster, Framework, Task
from schemas.rejections import Rejection

# Bump when a value type changes incompatibly; it travels in every record's headers.
SCHEMA_VERSION = 1


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
        if self.compacted:
            return {
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": "60000",
                "delete.retention.ms": "86400000",
            }
        return {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}


_SOURCE_READERS = ("processors", "outside consumers")

TOPICS: tuple[Topic, ...] = (
    Topic("agents", "wayfinder.mesos.agents", "agent id", Agent, True, 3,
          ("producers/mesos",), _SOURCE_READERS, "Every registered Mesos agent."),
    Topic("frameworks", "wayfinder.mesos.frameworks", "framework id", Framework, True, 3,
          ("producers/mesos",), _SOURCE_READERS, "Every registered Mesos framework."),
    Topic("tasks", "wayfinder.mesos.tasks", "task id", Task, True, 3,
          ("producers/mesos",), _SOURCE_READERS,
          "Every non-terminal Mesos task; a terminal state is published, then the task is tombstoned."),
    Topic("cluster", "wayfinder.mesos.cluster", "the constant 'cluster'", Cluster, True, 1,
          ("producers/mesos",), _SOURCE_READERS, "The leading Mesos master and the list of masters."),
    Topic("apps", "wayfinder.marathon.apps", "app id", App, True, 3,
          ("producers/marathon",), _SOURCE_READERS, "Every Marathon app."),
    Topic("app-tasks", "wayfinder.marathon.tasks", "task id", AppTask, True, 3,
          ("producers/marathon",), _SOURCE_READERS, "Every Marathon task with its health check results."),
    Topic("events", "wayfinder.events", "entity id", ChangeEvent, False, 3,
          ("producers/mesos", "producers/marathon"), ("wayfinder tail", "outside consumers"),
          "Append-only history of every change: task launches, kills, health, agents, apps."),
    Topic("rejections", "wayfinder.rejections", "source (mesos or marathon)", Rejection, False, 1,
          ("producers/mesos", "producers/marathon"), ("operators", "outside consumers"),
          "Append-only log of every input refused, and why."),
)

_BY_ALIAS = {topic.alias: topic for topic in TOPICS}


def topic(alias: str) -> Topic:
    """The topic with this catalog alias; a clear error lists the valid ones."""
    try:
        return _BY_ALIAS[alias]
    except KeyError:
        raise KeyError(f"unknown topic alias {alias!r}; known: {', '.join(_BY_ALIAS)}") from None


def aliases() -> list[str]:
    return list(_BY_ALIAS)
