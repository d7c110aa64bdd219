"""A bad label refuses exactly its port (or, app-level, its app), with the reason; the app's
other ports and other apps are untouched."""

import pytest

from processors.haproxy.labels import Rejection
from processors.haproxy.table import HaproxyTable
from schemas.mesos import Agent
from tests.unit.haproxy_derive.builders import derive, host_app, task

AGENT = Agent(id="agent-1", hostname="agent1", ip="10.0.0.1")

BAD_PORT_LABELS = [
    ("PORT", "70000", "is not an integer from 1 to 65535"),
    ("PORT", "80 ", None),  # valid: surrounding spaces are fine
    ("PORT", "8o", "is not an integer from 1 to 65535"),
    ("BACKEND_WEIGHT", "1.5", "is not an integer"),
    ("BACKEND_WEIGHT", "99999999999", "is not an integer"),
    ("MODE", "udp", "is 'http' or 'tcp'"),
    ("VHOST", "a.com\n  use_backend evil", "holds a line break"),
    ("VHOST", "a.com,,b.com", "empty host name"),
    ("VHOST", "*.example.com", "no wildcards"),
    ("PATH", "/a #comment", "is neither the flag -i nor a path"),
    ("PATH", "/a\nacl x", "holds a line break"),
    ("PATH", "-i", "names no path"),
    ("BIND_ADDR", "0.0.0.0:80", "is '*' or an IP address"),
    ("BIND_OPTIONS", "ssl crt /a.pem\nfrontend evil", "holds a line break"),
    ("BIND_OPTIONS", "ssl crt /a.pem frontend evil", "'frontend' is not a bind keyword"),
    ("BIND_OPTIONS", "ssl crt", "needs an argument"),
    ("BIND_OPTIONS", "evil", "not a bind keyword"),
    ("BIND_OPTIONS", "ssl crt \"/a", "an argument is letters"),
    ("BALANCE", "fastest", "balance algorithms"),
    ("BALANCE", "roundrobin\nserver x 1.2.3.4:80", "holds a line break"),
    ("BALANCE", "roundrobin server", "balance algorithms"),
    ("AUTH", "realm:user", "exactly two ':'"),
    ("AUTH", "realm:user:hash:extra", "exactly two ':'"),
    ("AUTH", "my realm:user:hash", "the realm is"),
    ("AUTH", "realm:us er:hash", "the user is"),
    ("AUTH", "realm:user:ha\"sh", "crypt(3) hash"),
    ("SSL_CERT", "certs/a.pem", "absolute path"),
    ("SSL_CERT", "/etc/../a.pem", "absolute path"),
    ("SSL_CERT", "/etc/a.pem crt /b.pem", "absolute path"),
    ("BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/33", "neither an IP address nor a CIDR"),
    ("BACKEND_NETWORK_ALLOWED_ACL", "example.com", "neither an IP address nor a CIDR"),
    ("BACKEND_HEALTHCHECK_PORT_INDEX", "2", "a port index of this app, which has 2 service ports"),
    ("BACKEND_HEALTHCHECK_PORT_INDEX", "-1", "is not an integer from 0 to 1"),
    ("HTTP_BACKEND_PROXYPASS_PATH", "shop", "is one path"),
    ("HTTP_BACKEND_REVPROXY_PATH", "/a b", "is one path"),
    ("HTTP_BACKEND_REDIR", "/x%[src]'", "is one path"),
    ("GROUP", "a b", "is not a group name"),
    ("GROUP", "*", "is not a group name"),
    ("BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:80", "only HAPROXY_0_FRONTEND_HEAD and HAPROXY_0_BACKEND_HEAD are supported"),
    ("HTTP_FRONTEND_ACL", "acl x hdr(host) -i a", "only HAPROXY_0_FRONTEND_HEAD and HAPROXY_0_BACKEND_HEAD are supported"),
    ("FRONTEND_HEAD", "timeout server 1s", "expected 'timeout client|client-fin|http-keep-alive|http-request <duration>'"),
    ("FRONTEND_HEAD", "timeout client forever", "expected 'timeout"),
    ("FRONTEND_HEAD", "use_backend other", "not in the supported subset"),
    ("FRONTEND_HEAD", "bind :9999", "not in the supported subset"),
    ("BACKEND_HEAD", "option httpchk", "expected '[no] option <name>'"),
    ("BACKEND_HEAD", "server evil 1.2.3.4:80", "not in the supported subset"),
    ("BACKEND_HEAD", "http-request set-header X-Src %[src]", "no spaces, quotes, '%'"),
    ("BACKEND_HEAD", "http-request set-header X a b", "the value one word"),
    ("BACKEND_HEAD", "retries {retries}", "placeholders are supported only"),
    ("BACKEND_HEAD", "http-response set-header X-A 1", "need mode http"),  # the port is tcp
]


@pytest.mark.parametrize("name, value, reason", BAD_PORT_LABELS)
def test_a_bad_port_label_refuses_only_its_port(name, value, reason):
    app = host_app(ports=(10000, 10001), labels={f"HAPROXY_0_{name}": value, "HAPROXY_1_VHOST": "fine.example.com"})
    other = host_app("/other", labels={"HAPROXY_0_VHOST": "other.example.com"})
    tasks = [task("web.1", ports=(31000, 31001)), task("other.1", app_id="/other")]
    table = HaproxyTable()
    table.put_many([("agent", "agent-1", AGENT), ("app", "/web", app), ("app", "/other", other),
                    *(("app_task", t.id, t) for t in tasks)])
    if reason is None:
        assert table.rejections == {}
        assert len(table.records) == 3
        return
    assert sorted(table.records) == [":/other:10000", ":/web:10001"]
    (rejection,) = table.rejections["/web"]
    assert (rejection.app_id, rejection.port_index) == ("/web", 0)
    assert reason in rejection.why, rejection.why
    assert rejection.label.startswith("HAPROXY_0_")
    assert table.records[":/web:10001"].servers[0].port == 31001


@pytest.mark.parametrize("labels, label, reason", [
    ({"HAPROXY_GROUP": "ext,in ternal"}, "HAPROXY_GROUP", "is not a group name"),
    ({"HAPROXY_GROUP": "a,,b"}, "HAPROXY_GROUP", "is not a group name"),
    ({"HAPROXY_DEPLOYMENT_GROUP": "bad group"}, "HAPROXY_DEPLOYMENT_GROUP", "deployment group is"),
    ({"HAPROXY_DEPLOYMENT_GROUP": "g", "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "many"},
     "HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "is not an integer"),
    ({"HAPROXY_DEPLOYMENT_GROUP": "g", "HAPROXY_DEPLOYMENT_STARTED_AT": "yesterday"},
     "HAPROXY_DEPLOYMENT_STARTED_AT", "ISO 8601"),
    ({"HAPROXY_DEPLOYMENT_GROUP": "g", "HAPROXY_DEPLOYMENT_ALT_PORT": "0"}, "HAPROXY_DEPLOYMENT_ALT_PORT", "from 1 to 65535"),
])
def test_a_bad_app_label_refuses_the_app_only(labels, label, reason):
    table = HaproxyTable()
    bad = host_app("/bad", labels={**labels, "HAPROXY_0_VHOST": "bad.example.com"})
    table.put_many([("app", "/bad", bad), ("app", "/good", host_app("/good"))])
    assert sorted(table.records) == [":/good:10000"]
    (rejection,) = [r for problems in table.rejections.values() for r in problems]
    assert (rejection.app_id, rejection.port_index, rejection.label) == ("/bad", -1, label)
    assert reason in rejection.why


def test_every_problem_of_a_port_is_reported():
    derived = derive(host_app(labels={"HAPROXY_0_PORT": "0", "HAPROXY_0_MODE": "x"}))
    assert [r.label for r in derived.rejections] == ["HAPROXY_0_MODE", "HAPROXY_0_PORT"]
    assert derived.services == {}


def test_vhost_with_mode_tcp_is_refused():
    derived = derive(host_app(labels={"HAPROXY_0_VHOST": "a.com", "HAPROXY_0_MODE": "tcp"}))
    assert derived.services == {}
    assert derived.rejections == [Rejection("/web", 0, "HAPROXY_0_MODE", "tcp",
                                            "a port with HAPROXY_0_VHOST is routed by the HTTP frontends and needs mode http")]


def test_a_port_without_service_port_needs_the_port_label():
    derived = derive(host_app(ports=(0, 10001)))
    assert list(derived.services) == [":/web:10001"]
    assert "set HAPROXY_0_PORT" in derived.rejections[0].why
    assert list(derive(host_app(ports=(0,), labels={"HAPROXY_0_PORT": "10300"})).services) == [":/web:10300"]


def test_two_ports_binding_one_port():
    derived = derive(host_app(ports=(10000, 10001), labels={"HAPROXY_1_PORT": "10000"}))
    assert list(derived.services) == [":/web:10000"]
    assert derived.rejections[0].why == "port 10000 is already bound by port index 0 of this app"


def test_bad_health_check_refuses_its_port():
    from schemas.marathon import HealthCheck
    app = host_app(checks=[HealthCheck(protocol="HTTP", port_index=0, path="/a b")])
    assert derive(app).services == {}
    assert "Marathon health check 0: path" in derive(app).rejections[0].why
