"""Marathon entities: apps and their tasks, as the Marathon REST API and event bus describe them."""

from __future__ import annotations

from msgspec import Struct


class PortDefinition(Struct, frozen=True):
    """A host-networking port of an app (``portDefinitions``)."""

    port: int
    protocol: str = "tcp"
    name: str | None = None
    labels: dict[str, str] = {}


class AppPortMapping(Struct, frozen=True):
    """A container port of an app on a bridge or container network (``portMappings``)."""

    container_port: int
    host_port: int | None = None
    service_port: int | None = None
    protocol: str = "tcp"
    name: str | None = None
    labels: dict[str, str] = {}


class Network(Struct, frozen=True):
    """An app network: ``host``, ``container/bridge`` or ``container`` with a name."""

    mode: str
    name: str | None = None


class HealthCheck(Struct, frozen=True):
    """A Marathon health check definition."""

    protocol: str
    port_index: int | None = None
    path: str | None = None


class App(Struct, frozen=True):
    """A Marathon app. Key: the app id (``/group/name``)."""

    id: str
    instances: int
    labels: dict[str, str] = {}
    port_definitions: list[PortDefinition] = []
    port_mappings: list[AppPortMapping] = []
    networks: list[Network] = []
    health_checks: list[HealthCheck] = []
    container_type: str | None = None
    version: str | None = None


class HealthCheckResult(Struct, frozen=True):
    """The outcome of one health check on one task."""

    alive: bool
    consecutive_failures: int = 0


class AppTask(Struct, frozen=True):
    """A Marathon task. Key: the task id."""

    id: str
    app_id: str
    state: str
    host: str | None = None
    agent_id: str | None = None
    ports: list[int] = []
    ip_addresses: list[str] = []
    health_check_results: list[HealthCheckResult] = []
    version: str | None = None
