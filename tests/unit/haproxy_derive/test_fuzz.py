"""Any labels, any tasks: nothing escapes, and every record that comes out is valid."""

import re

from hypothesis import HealthCheck as Health
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.haproxy import templates
from processors.haproxy.labels import SETTINGS
from processors.haproxy.table import HaproxyTable
from schemas import codec
from schemas.haproxy import Service, service_key
from schemas.marathon import HealthCheck
from tests.unit.haproxy_derive.builders import bridge_app, container_app, host_app, task

NAMES = sorted(SETTINGS | set(templates.SUPPORTED) | {"BACKEND_SERVER_OPTIONS", "HTTP_FRONTEND_ACL", "NOPE"})
PIECES = ["", " ", "\n", "\r\n", "#", "{", "}", "%[src]", "'", '"', "\\", ",", ":", "/", "*", "-i", "true", "y", "0", "1",
          "65535", "65536", "-1", "http", "tcp", "ssl", "crt", "/etc/a.pem", "a.example.com", "10.0.0.0/8", "::1",
          "roundrobin", "hdr(x)", "uri", "realm:user:$6$x", "timeout client 1s", "option httplog",
          "http-request set-header X-A b", "frontend {backend}", "maxconn 10", "server x 1.2.3.4:80", "ext", "a b"]
values = st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=6).map("".join)
port_labels = st.dictionaries(st.tuples(st.integers(0, 2), st.sampled_from(NAMES)).map(lambda t: f"HAPROXY_{t[0]}_{t[1]}"),
                              values, max_size=8)
app_labels = st.dictionaries(st.sampled_from(["HAPROXY_GROUP", "HAPROXY_DEPLOYMENT_GROUP", "HAPROXY_DEPLOYMENT_STARTED_AT",
                                              "HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "HAPROXY_DEPLOYMENT_NEW_INSTANCES"]),
                             values, max_size=3)
checks = st.lists(st.builds(HealthCheck, protocol=st.sampled_from(["HTTP", "TCP", "MESOS_HTTP", "COMMAND", "x"]),
                            port_index=st.none() | st.integers(-1, 3), path=st.none() | values,
                            interval_seconds=st.integers(-1, 10**20), max_consecutive_failures=st.integers(-5, 10**6),
                            port=st.none() | st.integers(-1, 70000)), max_size=2)
SAFE_TEXT = re.compile(r"[^\x00-\x1f\x7f#{}\"'\\]*")


@st.composite
def apps(draw):
    kind = draw(st.sampled_from([host_app, bridge_app, container_app]))
    labels = {**draw(app_labels), **draw(port_labels)}
    app_id = draw(st.sampled_from(["/a", "/b", "/g/c"]))
    if kind is host_app:
        return host_app(app_id, ports=draw(st.lists(st.integers(-1, 70000), max_size=3)), labels=labels, checks=draw(checks))
    if kind is bridge_app:
        return bridge_app(app_id, mappings=draw(st.lists(st.tuples(st.integers(1, 9000), st.none() | st.integers(0, 70000)), max_size=3)),
                          labels=labels, checks=draw(checks))
    return container_app(app_id, labels=labels)


tasks = st.lists(st.builds(task, st.sampled_from(["t1", "t2", "t3"]), app_id=st.sampled_from(["/a", "/b", "/g/c"]),
                           ports=st.lists(st.integers(-1, 70000), max_size=3).map(tuple),
                           state=st.sampled_from(["TASK_RUNNING", "TASK_STAGING", "TASK_LOST"]),
                           host=st.sampled_from(["10.0.0.1", "agent1", ""]), ips=st.sampled_from([(), ("9.0.0.1",), ("x",)]),
                           alive=st.none() | st.lists(st.booleans(), max_size=2)), max_size=4)


def check_valid(key: str, service: Service) -> None:
    assert key == service_key(service.group, service.app_id, service.service_port)
    assert codec.decode(codec.encode(service), Service) == service
    assert 1 <= service.service_port <= 65535 and 1 <= service.bind_port <= 65535
    assert service.mode in ("http", "tcp") and (service.mode == "http" or not service.vhosts)
    for text in (service.bind_options, service.path, service.ssl_cert, service.balance, service.proxypass_path,
                 service.revproxy_path, service.redirect_path, *service.vhosts, *service.network_allowed):
        assert text is None or SAFE_TEXT.fullmatch(text), text
    for section, lines in (("frontend", service.frontend_options), ("backend", service.backend_options)):
        assert templates.template_lines(section, "\n".join(lines)).lines == tuple(lines)
    names = [server.name for server in service.servers]
    assert names == sorted(set(names))
    assert len({server.id for server in service.servers}) == len(names)
    assert all(1 <= s.port <= 65535 and 0 < s.id < 32767 for s in service.servers)
    if service.health_check is not None:
        assert service.health_check.fall >= 1 and service.health_check.interval_s >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[Health.too_slow])
@given(st.lists(apps(), max_size=3), tasks)
def test_no_exception_and_every_record_valid(app_list, task_list):
    table = HaproxyTable()
    table.put_many([("app", app.id, app) for app in app_list] + [("app_task", t.id, t) for t in task_list])
    for key, service in table.records.items():
        check_valid(key, service)
    fresh = HaproxyTable()
    fresh.put_many([("app_task", t.id, t) for t in task_list] + [("app", app.id, app) for app in app_list])
    assert fresh.records == table.records
