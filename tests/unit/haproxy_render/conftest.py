"""Conventions for these tests:

- servers: 10.200.3.0/24, host ports 31001..; server names as the processor makes them
  (<ip with _>_<port>); every test's node serves every group unless it says otherwise;
- golden files hold the config from the first section after the fixed head (global, defaults,
  stats), except nginx.cfg, which is the whole file. WAYFINDER_UPDATE_GOLDEN=1 rewrites them;
- every rendered config must also pass the real `haproxy -c` without a warning (`valid`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import msgspec
import pytest

from appliers.haproxy.certificate import make_self_signed
from appliers.haproxy.process import HAPROXY, check_config
from appliers.haproxy.render import render
from appliers.haproxy.settings import HaproxySettings
from schemas.haproxy import Server, Service

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = HaproxySettings()  # groups *, marathon-lb's ports, bind *


def server(n: int, port: int | None = None, **fields) -> Server:
    ip = f"10.200.3.{10 + n}"
    port = port or 31000 + n
    return Server(name=f"{ip.replace('.', '_')}_{port}", id=1000 + n, ip=ip, port=port,
                  task_id=f"task-{n}", **fields)


def service(app_id: str, service_port: int, *servers: Server, group: str = "external", **fields) -> Service:
    fields.setdefault("mode", "http" if fields.get("vhosts") else "tcp")
    fields.setdefault("bind_port", service_port)
    backend = app_id.strip("/").replace("/", "_") + f"_{service_port}"
    return Service(group=group, app_id=app_id, service_port=service_port, backend=backend,
                   servers=list(servers), **fields)


def tail(text: str) -> str:
    """The config after the fixed head: from the first section after `listen stats`."""
    head, _, rest = text.partition("\nlisten stats\n")
    _, _, after = rest.partition("\n\n")
    return after


def golden(name: str, actual: str) -> str:
    path = GOLDEN / name
    if os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    return path.read_text()


@pytest.fixture(scope="session")
def haproxy_dir():
    if not Path(HAPROXY).exists():
        pytest.skip(f"{HAPROXY} is missing (Debian package haproxy)")
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is missing")
    with tempfile.TemporaryDirectory(prefix="wayfinder-haproxy-check-") as directory:
        make_self_signed(Path(directory) / "self-signed.pem")
        yield directory


@pytest.fixture
def valid(haproxy_dir):
    """valid(services, settings, slots) -> None: the config passes `haproxy -c` with no warning.
    Paths (directory, certificates) are pointed at a scratch directory that has them."""

    def check(services, settings: HaproxySettings = SETTINGS, slots=None) -> None:
        local = dataclasses.replace(settings, directory=haproxy_dir, ssl_cert=None)
        cert = str(Path(haproxy_dir) / "self-signed.pem")
        services = [msgspec.structs.replace(s, ssl_cert=cert) if s.ssl_cert else s for s in services]
        text = render(services, local, slots or {}).text
        path = Path(haproxy_dir) / "check.cfg"
        path.write_text(text)
        ok, output = check_config(str(path))
        assert ok, output + "\n" + text
        assert "[WARNING]" not in output, output

    return check
