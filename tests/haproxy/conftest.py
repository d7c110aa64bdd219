"""HAProxy itself on loopback: each test gets its own HAProxy (free ports, its own directory,
stopped at the end, and checked to leave no process behind) and its own HTTP backends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliers.haproxy.certificate import ensure_certificate
from appliers.haproxy.process import HAPROXY, HaproxyProcess, converge, group_members
from appliers.haproxy.settings import HaproxySettings, SharedPorts
from schemas.haproxy import Server, Service
from tests.haproxy.loopback import Backend, free_ports


class Balancer:
    """What the node role will do, without Kafka: converge HAProxy to a list of services."""

    def __init__(self, directory: Path):
        http, https, appid, stats = free_ports(4)
        self.settings = HaproxySettings(
            groups=("*",), ports=SharedPorts(http, https, appid, stats), bind="127.0.0.1",
            directory=str(directory), hard_stop_after="5s",
        )
        ensure_certificate(self.settings)
        self.process = HaproxyProcess(self.settings)
        self.current = None

    def apply(self, services: list[Service]):
        result = converge(self.process, self.current, services)
        self.current = result.applied
        return result

    def reloads(self) -> int:
        return self.process.show_proc().reloads


def server_for(backend: Backend, **fields) -> Server:
    return Server(name=f"127_0_0_1_{backend.port}", id=backend.port, ip="127.0.0.1", port=backend.port,
                  task_id=f"task-{backend.name}", **fields)


def service(app_id: str, service_port: int, *backends: Backend, **fields) -> Service:
    fields.setdefault("mode", "http")
    fields.setdefault("bind_port", service_port)
    backend = app_id.strip("/").replace("/", "_") + f"_{service_port}"
    return Service(group="", app_id=app_id, service_port=service_port, backend=backend,
                   servers=[server_for(b) for b in backends], **fields)


@pytest.fixture
def balancer(tmp_path):
    if not Path(HAPROXY).exists():
        pytest.skip(f"{HAPROXY} is missing (Debian package haproxy)")
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is missing")
    lb = Balancer(tmp_path / "haproxy")
    try:
        yield lb
    finally:
        group = lb.process.pid
        lb.process.stop()
        if group is not None:
            assert group_members(group) == [], "HAProxy processes left behind"


@pytest.fixture
def backends():
    """backends(n) -> n new HTTP backends named b1..bn (continuing the count), closed at the end."""
    made: list[Backend] = []

    def make(count: int) -> list[Backend]:
        new = [Backend(f"b{len(made) + i + 1}") for i in range(count)]
        made.extend(new)
        return new

    yield make
    for backend in made:
        backend.close()
