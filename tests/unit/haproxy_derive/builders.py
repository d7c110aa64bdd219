"""Small builders of Marathon apps and tasks for the HAProxy derivation tests."""

from __future__ import annotations

from processors.haproxy.services import services_of
from schemas.haproxy import Service
from schemas.marathon import App, AppPortMapping, AppTask, HealthCheck, HealthCheckResult, Network, PortDefinition

AGENT_IPS = {"agent-1": "10.0.0.1", "agent-2": "10.0.0.2"}


def host_app(app_id: str = "/web", ports=(10000,), labels=None, checks=(), instances: int = 1, **fields) -> App:
    return App(id=app_id, instances=instances, labels=dict(labels or {}),
               port_definitions=[PortDefinition(port=p) for p in ports], networks=[Network(mode="host")],
               health_checks=list(checks), **fields)


def bridge_app(app_id: str = "/web", mappings=((8080, 10000),), labels=None, checks=(), **fields) -> App:
    return App(id=app_id, instances=1, labels=dict(labels or {}),
               port_mappings=[AppPortMapping(container_port=c, host_port=0, service_port=s) for c, s in mappings],
               networks=[Network(mode="container/bridge")], health_checks=list(checks), **fields)


def container_app(app_id: str = "/web", mappings=((80, 10000),), labels=None, **fields) -> App:
    return App(id=app_id, instances=1, labels=dict(labels or {}),
               port_mappings=[AppPortMapping(container_port=c, service_port=s) for c, s in mappings],
               networks=[Network(mode="container", name="dcos")], **fields)


def task(task_id: str, app_id: str = "/web", ports=(31000,), state: str = "TASK_RUNNING", host: str = "agent1",
         agent_id: str = "agent-1", ips=(), alive=None) -> AppTask:
    results = [] if alive is None else [HealthCheckResult(alive=a) for a in alive]
    return AppTask(id=task_id, app_id=app_id, state=state, host=host, agent_id=agent_id, ports=list(ports),
                   ip_addresses=list(ips), health_check_results=results)


def http_check(port_index: int = 0, **fields) -> HealthCheck:
    return HealthCheck(protocol="HTTP", port_index=port_index, path="/health", **fields)


def derive(apps, tasks=(), agent_ips=AGENT_IPS, **options):
    apps = [apps] if isinstance(apps, App) else list(apps)
    return services_of(apps, tasks, agent_ips, **options)


def only(apps, tasks=()) -> Service:
    derived = derive(apps, tasks)
    assert derived.rejections == [], derived.rejections
    (service,) = derived.services.values()
    return service
