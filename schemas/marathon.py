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
    # Marathon's defaults; the HAProxy stage maps them to HAProxy's check timing.
    interval_seconds: int = 60
    timeout_seconds: int = 20
    max_consecutive_failures: int = 3
    grace_period_seconds: int = 300
    port: int | None = None  # an explicit port to check instead of the port at port_index


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
    # IP-per-task apps of Marathon <= 1.4: the container ports (``ipAddress.discovery.ports``).
    discovery_ports: list[int] = []
    # ``versionInfo.lastScalingAt``: decides new and old of a blue/green pair split by
    # HAPROXY_DEPLOYMENT_NEW_INSTANCES.
    last_scaling_at: str | None = None


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
