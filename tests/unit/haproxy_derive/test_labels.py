"""Each marathon-lb label, alone on a one-port host app, and the exact record it gives."""

import msgspec
import pytest

from processors.haproxy.labels import labels_by_port, port_labels
from schemas.haproxy import NO_GROUP, Auth, HealthCheck, Server, Service
from tests.unit.haproxy_derive.builders import bridge_app, derive, host_app, http_check, only, task

SERVER = Server(name="agent1_10_0_0_1_31000", id=0, ip="10.0.0.1", port=31000, task_id="web.1")
BASE = Service(group=NO_GROUP, app_id="/web", service_port=10000, backend="web_10000", bind_port=10000,
               mode="tcp", servers=[])


def with_label(name: str, value: str, **expected) -> None:
    service = only(host_app(labels={name: value}))
    assert service == msgspec.structs.replace(BASE, **expected)


def test_defaults_without_labels():
    assert only(host_app()) == BASE


@pytest.mark.parametrize("name, value, expected", [
    ("HAPROXY_0_VHOST", "Shop.Example.com, api.example.com", {"vhosts": ["shop.example.com", "api.example.com"], "mode": "http"}),
    ("HAPROXY_0_PATH", "-i /api /v2", {"path": "-i /api /v2", "weight": 1}),
    ("HAPROXY_0_MODE", "HTTP", {"mode": "http"}),
    ("HAPROXY_0_PORT", "8443", {"bind_port": 8443, "backend": "web_8443"}),
    ("HAPROXY_0_BIND_ADDR", "10.0.0.9", {"bind_addr": "10.0.0.9"}),
    ("HAPROXY_0_BIND_ADDR", "fd00:0::1", {"bind_addr": "fd00::1"}),
    ("HAPROXY_0_BIND_OPTIONS", "ssl  crt /etc/ssl/a.pem alpn h2,http/1.1", {"bind_options": "ssl crt /etc/ssl/a.pem alpn h2,http/1.1"}),
    ("HAPROXY_0_BALANCE", "leastconn", {"balance": "leastconn"}),
    ("HAPROXY_0_BALANCE", "hdr(X-User)", {"balance": "hdr(X-User)"}),
    ("HAPROXY_0_BALANCE", "uri len 10 whole", {"balance": "uri len 10 whole"}),
    ("HAPROXY_0_STICKY", "Yes", {"sticky": True}),
    ("HAPROXY_0_STICKY", "nope", {}),
    ("HAPROXY_0_REDIRECT_TO_HTTPS", "t", {"redirect_to_https": True}),
    ("HAPROXY_0_USE_HSTS", "TRUE", {"use_hsts": True}),
    ("HAPROXY_0_BACKEND_WEIGHT", "-5", {"weight": -5}),
    ("HAPROXY_0_AUTH", "realm:alice:$6$salt$hash", {"auth": Auth(realm="realm", user="alice", password_hash="$6$salt$hash")}),
    ("HAPROXY_0_SSL_CERT", "/etc/ssl/certs/shop.pem", {"ssl_cert": "/etc/ssl/certs/shop.pem"}),
    ("HAPROXY_0_ENABLED", "true", {}),
    ("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 192.168.1.7 10.1.2.3/16", {"network_allowed": ["10.0.0.0/8", "192.168.1.7", "10.1.0.0/16"]}),
    ("HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/shop", {"proxypass_path": "/shop"}),
    ("HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "/shop/", {"revproxy_path": "/shop/"}),
    ("HAPROXY_0_HTTP_BACKEND_REDIR", "/index.html", {"redirect_path": "/index.html"}),
    ("HAPROXY_0_GROUP", "internal", {"group": "internal"}),
    ("HAPROXY_GROUP", "", {}),
    ("HAPROXY_1_VHOST", "ignored.example.com", {}),  # no port 1: ignored like marathon-lb
    ("HAPROXY_0_UNKNOWN_THING", "whatever", {}),  # not a marathon-lb label
    ("HAPROXY_0_FRONTEND_HEAD", "frontend {backend}\r\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n  mode {mode}\n  timeout client 30m\n  maxconn 200",
     {"frontend_options": ["timeout client 30m", "maxconn 200"]}),
    ("HAPROXY_0_BACKEND_HEAD", "backend {backend}\n  balance {balance}\n  mode {mode}\n  timeout  server 1h\n  option redispatch\n  no option tcpka",
     {"backend_options": ["timeout server 1h", "option redispatch", "no option tcpka"]}),
])
def test_one_label(name, value, expected):
    with_label(name, value, **expected)


def test_weight_wins_over_path_and_path_bumps_only_zero():
    assert only(host_app(labels={"HAPROXY_0_PATH": "/a", "HAPROXY_0_BACKEND_WEIGHT": "7"})).weight == 7
    assert only(host_app(labels={"HAPROXY_0_PATH": "/a", "HAPROXY_0_BACKEND_WEIGHT": "0"})).weight == 1


def test_groups_one_record_per_group_and_per_port_override():
    app = host_app(ports=(10000, 10001), labels={"HAPROXY_GROUP": "external, internal", "HAPROXY_1_GROUP": "edge"})
    assert sorted(derive(app).services) == ["edge:/web:10001", "external:/web:10000", "internal:/web:10000"]


def test_enabled_false_and_strict_mode():
    app = host_app(ports=(10000, 10001), labels={"HAPROXY_0_ENABLED": "false", "HAPROXY_1_ENABLED": "y"})
    assert sorted(derive(app).services) == [":/web:10001"]
    from processors.haproxy.services import Options
    assert sorted(derive(host_app(ports=(10000, 10001), labels={"HAPROXY_1_ENABLED": "true"}),
                         options=Options(strict=True)).services) == [":/web:10001"]


def test_http_health_check_makes_http_unless_mode_label():
    check = HealthCheck(kind="http", interval_s=60, timeout_s=20, fall=4, path="/health")
    assert only(host_app(checks=[http_check()])) == msgspec.structs.replace(BASE, mode="http", health_check=check)
    assert only(host_app(checks=[http_check()], labels={"HAPROXY_0_MODE": "tcp"})).health_check == \
        HealthCheck(kind="tcp", interval_s=60, timeout_s=20, fall=4)


def test_healthcheck_port_index_uses_that_check_and_each_task_port():
    from schemas.marathon import HealthCheck as MarathonCheck
    app = host_app(ports=(10000, 10001), checks=[MarathonCheck(protocol="MESOS_HTTP", port_index=1, path="/ok",
                                                               interval_seconds=5, max_consecutive_failures=2)],
                   labels={"HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX": "1"})
    derived = derive(app, [task("web.1", ports=(31000, 31001), alive=[True])])
    service = derived.services[":/web:10000"]
    assert service.mode == "http"  # every HTTP flavour forces http through the port index
    assert service.health_check == HealthCheck(kind="http", interval_s=5, timeout_s=20, fall=3, path="/ok")
    assert service.servers == [msgspec.structs.replace(SERVER, id=service.servers[0].id, healthy=True, check_port=31001)]
    # Port 1 has no check of its own with the MESOS_HTTP flavour: tcp, like marathon-lb.
    assert derived.services[":/web:10001"].mode == "tcp"


def test_explicit_check_port_applies_to_every_port():
    from schemas.marathon import HealthCheck as MarathonCheck
    app = host_app(ports=(10000, 10001), checks=[MarathonCheck(protocol="TCP", port=9000)])
    assert {s.health_check for s in derive(app).services.values()} == \
        {HealthCheck(kind="tcp", interval_s=60, timeout_s=20, fall=4, port=9000)}


def test_command_check_is_tcp_or_http_on_root():
    from schemas.marathon import HealthCheck as MarathonCheck
    check = MarathonCheck(protocol="COMMAND", port_index=0)
    assert only(host_app(checks=[check])).health_check.kind == "tcp"
    assert only(host_app(checks=[check], labels={"HAPROXY_0_VHOST": "a.b"})).health_check == \
        HealthCheck(kind="http", path="/")


def test_port_labels_read_alone():
    labels = labels_by_port({"HAPROXY_0_VHOST": "a.com", "HAPROXY_12_PATH": "/x", "HAPROXY_GROUP": "g", "OTHER": "1"})
    assert labels == {0: {"VHOST": "a.com"}, 12: {"PATH": "/x"}}
    settings, problems = port_labels("/a", 0, labels[0], 1)
    assert problems == [] and settings.vhosts == ("a.com",)


def test_bridge_app_with_vhost_like_marathon_lb():
    app = bridge_app(labels={"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "myvhost.com"})
    service = only(app, [task("web.1", ports=(1565,), host="10.0.2.148", agent_id="unknown")])
    assert service.servers == [Server(name="10_0_2_148_1565", id=service.servers[0].id, ip="10.0.2.148", port=1565, task_id="web.1")]
    assert (service.group, service.mode, service.vhosts) == ("external", "http", ["myvhost.com"])
