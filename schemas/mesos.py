"""Mesos entities as Wayfinder publishes them: agents, frameworks, tasks and the cluster.

The values are normalised from either shape Mesos speaks (the v1 operator API and the
legacy ``/master/state`` document), so consumers never see raw Mesos JSON.

Entities are immutable trees (``gc=False``): the cyclic garbage collector need not track the
millions of them a processor holds at 100,000 tasks.
"""

from __future__ import annotations

from msgspec import Struct

# Task states after which a task never runs again (Mesos TaskState).
TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_LOST",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
)


class PortRange(Struct, frozen=True, gc=False):
    """An inclusive range of host ports, as in a Mesos ``ports`` resource."""

    begin: int
    end: int


class PortMapping(Struct, frozen=True, gc=False):
    """A container port published on a host port (Docker bridge or a CNI port mapper)."""

    host_port: int
    container_port: int
    protocol: str = "tcp"


class NetworkInfo(Struct, frozen=True, gc=False):
    """One container network of a task status: its name and the addresses it received."""

    name: str | None = None
    ip_addresses: list[str] = []
    port_mappings: list[PortMapping] = []


class TaskStatus(Struct, frozen=True, gc=False):
    """The newest status Mesos reported for one task state."""

    state: str
    timestamp: float
    healthy: bool | None = None
    network_infos: list[NetworkInfo] = []
    labels: dict[str, str] = {}  # a key given several times keeps its last value here ...
    repeated_labels: dict[str, list[str]] = {}  # ... and every value, in order, here


class DiscoveryPort(Struct, frozen=True, gc=False):
    """A DiscoveryInfo port: where VIP labels and named SRV ports come from."""

    number: int
    protocol: str = ""
    name: str | None = None
    labels: dict[str, str] = {}


class Discovery(Struct, frozen=True, gc=False):
    """A task's DiscoveryInfo. ``name`` overrides the task name for DNS."""

    visibility: str = "FRAMEWORK"
    name: str | None = None
    ports: list[DiscoveryPort] = []
    labels: dict[str, str] = {}


class Container(Struct, frozen=True, gc=False):
    """How the task runs: ``DOCKER`` or ``MESOS``, the Docker network mode and port mappings."""

    type: str | None = None
    docker_network: str | None = None
    port_mappings: list[PortMapping] = []
    network_names: list[str] = []


def task_key(framework_id: str, task_id: str) -> str:
    """The ``tasks`` topic key: ``<framework id>/<task id>``.

    Mesos keeps a task id unique only within its framework: two frameworks may both run
    ``server-0``. Mesos refuses ``/`` in framework ids, so the first ``/`` splits the key.
    """
    return f"{framework_id}/{task_id}"


def split_task_key(key: str) -> tuple[str, str]:
    """``(framework id, task id)`` of a ``tasks`` key."""
    framework_id, _, task_id = key.partition("/")
    return framework_id, task_id


class Task(Struct, frozen=True, gc=False):
    """A Mesos task. Key: ``<framework id>/<task id>`` (see ``task_key``).

    ``statuses`` keeps the newest status of each state, oldest first; ``healthy`` is the
    health of the newest status (``None``: no result yet, or no Mesos health check);
    ``health_check`` says whether Mesos runs a health check for the task at all.
    """

    id: str
    name: str
    framework_id: str
    agent_id: str
    state: str
    statuses: list[TaskStatus] = []
    healthy: bool | None = None
    health_check: bool = False
    labels: dict[str, str] = {}
    discovery: Discovery | None = None
    port_ranges: list[PortRange] = []
    container: Container | None = None

    @property
    def key(self) -> str:
        return task_key(self.framework_id, self.id)


class Agent(Struct, frozen=True, gc=False):
    """A Mesos agent. Key: the agent id. ``ip`` is taken from the agent PID."""

    id: str
    hostname: str
    ip: str | None = None
    port: int = 5051
    active: bool = True
    port_ranges: list[PortRange] = []
    attributes: dict[str, str] = {}


class Framework(Struct, frozen=True, gc=False):
    """A Mesos framework. Key: the framework id."""

    id: str
    name: str
    hostname: str | None = None
    ip: str | None = None
    port: int | None = None
    active: bool = True
    webui_url: str | None = None


class Master(Struct, frozen=True, gc=False):
    """One Mesos master, as HOST:PORT and its IP."""

    hostname: str
    ip: str | None = None
    port: int = 5050


class Cluster(Struct, frozen=True, gc=False):
    """The Mesos cluster: the leading master and every known master. Key: ``cluster``."""

    leader: Master
    masters: list[Master] = []
    cluster_name: str | None = None
    mesos_version: str | None = None
