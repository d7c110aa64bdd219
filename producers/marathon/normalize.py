"""Marathon JSON -> Wayfinder entities. Pure.

Accepts the shapes of Marathon 1.x: ``portDefinitions`` or the older ``ports`` list,
``container.portMappings`` (1.5+) or ``container.docker.portMappings`` (before), and
``networks`` or the older ``container.docker.network`` / ``ipAddress`` fields.
"""

from __future__ import annotations

from producers.problems import InputRejected, Problems
from schemas.marathon import App, AppPortMapping, AppTask, HealthCheck, HealthCheckResult, Network, PortDefinition

_DOCKER_NETWORK_MODES = {"BRIDGE": "container/bridge", "HOST": "host", "USER": "container"}


def normalize_app_id(app_id: str) -> str:
    return app_id if app_id.startswith("/") else "/" + app_id


def labels_of(raw: object, owner: str, problems: Problems) -> dict[str, str]:
    """A Marathon labels object: string keys to string values; anything else is reported and dropped."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("labels", f"{owner}: labels must be an object of strings", raw)
        return {}
    labels = {}
    for key, value in raw.items():
        if isinstance(value, str):
            labels[key] = value
        else:
            problems.add("labels", f"{owner}: label {key!r} has a non-string value", {key: value})
    return labels


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _port_definitions(app: dict, app_id: str, problems: Problems) -> list[PortDefinition]:
    raw = app.get("portDefinitions")
    if raw is None:  # Marathon before 1.0: a bare list of service ports
        return [PortDefinition(port=p) for p in app.get("ports") or [] if _int_or_none(p) is not None]
    definitions = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or _int_or_none(item.get("port")) is None:
            problems.add("port-definition", f"app {app_id}: port definition without a port", item)
            continue
        definitions.append(
            PortDefinition(
                port=item["port"],
                protocol=item.get("protocol", "tcp"),
                name=item.get("name"),
                labels=labels_of(item.get("labels"), f"port {item['port']} of app {app_id}", problems),
            )
        )
    return definitions


def _port_mappings(app: dict, app_id: str, problems: Problems) -> list[AppPortMapping]:
    container = app.get("container") or {}
    raw = container.get("portMappings")
    if raw is None:
        raw = (container.get("docker") or {}).get("portMappings")
    mappings = []
    for item in raw or []:
        if not isinstance(item, dict) or _int_or_none(item.get("containerPort")) is None:
            problems.add("port-mapping", f"app {app_id}: port mapping without a containerPort", item)
            continue
        mappings.append(
            AppPortMapping(
                container_port=item["containerPort"],
                host_port=_int_or_none(item.get("hostPort")),
                service_port=_int_or_none(item.get("servicePort")),
                protocol=item.get("protocol", "tcp"),
                name=item.get("name"),
                labels=labels_of(item.get("labels"), f"port mapping {item['containerPort']} of app {app_id}", problems),
            )
        )
    return mappings


def _networks(app: dict) -> list[Network]:
    if isinstance(app.get("networks"), list):
        return [Network(mode=n.get("mode", "host"), name=n.get("name")) for n in app["networks"] if isinstance(n, dict)]
    docker_network = ((app.get("container") or {}).get("docker") or {}).get("network")
    if docker_network in _DOCKER_NETWORK_MODES:
        name = (app.get("ipAddress") or {}).get("networkName")
        return [Network(mode=_DOCKER_NETWORK_MODES[docker_network], name=name)]
    if isinstance(app.get("ipAddress"), dict):
        return [Network(mode="container", name=app["ipAddress"].get("networkName"))]
    return [Network(mode="host")]


def app_of(raw: object, problems: Problems) -> App:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"].strip("/"):
        raise InputRejected("app", "an app must be an object with an id", raw)
    app_id = normalize_app_id(raw["id"])
    for name in ("container", "ipAddress"):  # the readers below look inside these
        if raw.get(name) is not None and not isinstance(raw[name], dict):
            raise InputRejected("app", f"app {app_id}: {name} must be an object, got {type(raw[name]).__name__}", raw)
    return App(
        id=app_id,
        instances=_int_or_none(raw.get("instances")) or 0,
        labels=labels_of(raw.get("labels"), f"app {app_id}", problems),
        port_definitions=_port_definitions(raw, app_id, problems),
        port_mappings=_port_mappings(raw, app_id, problems),
        networks=_networks(raw),
        health_checks=[_health_check(h) for h in raw.get("healthChecks") or [] if isinstance(h, dict)],
        container_type=(raw.get("container") or {}).get("type"),
        version=raw.get("version"),
        discovery_ports=_discovery_ports(raw.get("ipAddress")),
        last_scaling_at=_str_or_none(_field(raw.get("versionInfo"), "lastScalingAt")),
    )


def _field(parent: object, name: str) -> object:
    return parent.get(name) if isinstance(parent, dict) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count_or(value: object, default: int) -> int:
    """A non-negative integer setting, or Marathon's default for anything else."""
    number = _int_or_none(value)
    return number if number is not None and number >= 0 else default


def _health_check(raw: dict) -> HealthCheck:
    # Every field is read by type: a check with a wrongly typed field keeps Marathon's
    # default for that field instead of failing the whole app.
    return HealthCheck(
        protocol=str(raw.get("protocol", "HTTP")),
        port_index=_int_or_none(raw.get("portIndex")),
        path=_str_or_none(raw.get("path")),
        interval_seconds=_count_or(raw.get("intervalSeconds"), 60),
        timeout_seconds=_count_or(raw.get("timeoutSeconds"), 20),
        max_consecutive_failures=_count_or(raw.get("maxConsecutiveFailures"), 3),
        grace_period_seconds=_count_or(raw.get("gracePeriodSeconds"), 300),
        port=_int_or_none(raw.get("port")) or None,  # Marathon writes 0 for "no explicit port"
    )


def _discovery_ports(ip_address: object) -> list[int]:
    """``ipAddress.discovery.ports[].number`` (IP-per-task apps before Marathon 1.5)."""
    discovery = ip_address.get("discovery") if isinstance(ip_address, dict) else None
    ports = discovery.get("ports") if isinstance(discovery, dict) else None
    return [p["number"] for p in ports if isinstance(p, dict) and _int_or_none(p.get("number")) is not None] \
        if isinstance(ports, list) else []


def _addresses(raw: object) -> list[str]:
    return [a["ipAddress"] for a in raw or [] if isinstance(a, dict) and isinstance(a.get("ipAddress"), str)]


def app_task_of(raw: object, app_id: str | None = None) -> AppTask:
    """A task from ``/v2/apps?embed=apps.tasks`` (``id``, ``appId``, ``slaveId``...)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise InputRejected("app-task", "a task must be an object with an id", raw)
    app_id = raw.get("appId") or app_id
    if not isinstance(app_id, str):
        raise InputRejected("app-task", f"task {raw['id']} names no app", raw)
    state = raw.get("state") or "TASK_RUNNING"  # Marathon before 1.4 lists only running tasks, without state
    if not isinstance(state, str):
        raise InputRejected("app-task", f"task {raw['id']}: state must be a string", raw)
    return AppTask(
        id=raw["id"],
        app_id=normalize_app_id(app_id),
        state=state,
        host=raw.get("host"),
        agent_id=raw.get("slaveId"),
        ports=[p for p in raw.get("ports") or [] if _int_or_none(p) is not None],
        ip_addresses=_addresses(raw.get("ipAddresses")),
        health_check_results=[
            HealthCheckResult(alive=bool(r.get("alive")), consecutive_failures=_int_or_none(r.get("consecutiveFailures")) or 0)
            for r in raw.get("healthCheckResults") or []
            if isinstance(r, dict)
        ],
        version=raw.get("version"),
    )


def app_task_of_status_update(event: dict, previous: AppTask | None) -> AppTask:
    """A task from a ``status_update_event``; health results carry over from the previous record."""
    for field in ("taskId", "appId", "taskStatus"):
        if not isinstance(event.get(field), str):
            raise InputRejected("sse-event", f"status_update_event without {field}", event)
    return AppTask(
        id=event["taskId"],
        app_id=normalize_app_id(event["appId"]),
        state=event["taskStatus"],
        host=event.get("host"),
        agent_id=event.get("slaveId"),
        ports=[p for p in event.get("ports") or [] if _int_or_none(p) is not None],
        ip_addresses=_addresses(event.get("ipAddresses")),
        health_check_results=previous.health_check_results if previous else [],
        version=event.get("version"),
    )
