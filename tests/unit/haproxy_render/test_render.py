"""The rendered haproxy.cfg compared as text with golden files, and checked by `haproxy -c`."""

import dataclasses

import msgspec

from appliers.haproxy.render import LeftOut, render
from appliers.haproxy.settings import parse_settings
from schemas.haproxy import NO_GROUP, Auth, HealthCheck
from tests.unit.haproxy_render.conftest import SETTINGS, golden, server, service, tail

HTTP_CHECK = HealthCheck(kind="http", interval_s=2, timeout_s=10, fall=11, path="/")
# realm:user:crypt(3) hash of "secret" (openssl passwd -6)
AUTH = Auth("shop", "admin", "$6$wayfinder$IQNMWOxlHc2RSDBA90rQV0tBTuEf.XwWGo3Rnau6lCn3nIWNm4omf28JzlVsHTsy7YzMv3XmjvOOH5RNTb3kL1")


def test_marathon_lb_golden_example_whole_file(valid):
    # §2.8 of the marathon-lb study: /nginx, service port 10000, one vhost, HTTP check
    nginx = service("/nginx", 10000, server(1), vhosts=["test.example.com"], health_check=HTTP_CHECK)
    text = render([nginx], SETTINGS, {}).text
    assert text == golden("nginx.cfg", text)
    valid([nginx])


def test_rules_ordered_by_weight_then_app_and_port(valid):
    services = [
        service("/shop/web", 10001, server(1), vhosts=["shop.example.com"]),
        service("/shop/api", 10002, server(2), vhosts=["shop.example.com"], path="/api"),  # weight 1 (PATH)
        service("/shop/api-v2", 10003, server(3), vhosts=["shop.example.com"], path="-i /api/v2 /v2", weight=5),
        service("/blog", 10004, server(4), vhosts=["blog.example.com", "www.blog.example.com"], weight=1),
    ]
    text = render(services, SETTINGS, {}).text
    assert tail(text) == golden("weights.cfg", tail(text))
    valid(services)


def test_redirect_hsts_and_auth_live_in_the_backend(valid):
    services = [
        service("/secure", 10010, server(1), server(2), vhosts=["a.example.com", "b.example.com"],
                path="/app", redirect_to_https=True, use_hsts=True, auth=AUTH),
    ]
    text = render(services, SETTINGS, {}).text
    assert tail(text) == golden("redirect_hsts_auth.cfg", tail(text))
    valid(services)


def test_sticky_tcp_mode_network_acls_and_checks(valid):
    services = [
        service("/sticky", 10020, server(1), server(2), vhosts=["sticky.example.com"], sticky=True,
                balance="leastconn", network_allowed=["10.0.0.0/8", "192.168.1.7"]),
        service("/db", 10021, server(3), mode="tcp", network_allowed=["10.0.0.0/8"],
                health_check=HealthCheck(kind="tcp", interval_s=5, timeout_s=3, fall=3, port=31999)),
        # an http check on a tcp port renders as a tcp check, as marathon-lb
        service("/cache", 10022, server(4), health_check=HTTP_CHECK, sticky=True),
    ]
    text = render(services, SETTINGS, {}).text
    assert tail(text) == golden("sticky_tcp_acl.cfg", tail(text))
    valid(services)


def test_proxypass_revproxy_and_root_redirect(valid):
    services = [
        service("/legacy", 10030, server(1), vhosts=["legacy.example.com"], path="/legacy",
                proxypass_path="/legacy", revproxy_path="/legacy/", redirect_path="/legacy/home"),
    ]
    text = render(services, SETTINGS, {}).text
    assert tail(text) == golden("proxypass.cfg", tail(text))
    valid(services)


def test_port_frontend_options_ssl_and_bind_address(valid):
    services = [
        service("/edge", 10040, server(1), mode="http", bind_port=8443, bind_addr="127.0.0.1",
                ssl_cert="/etc/wayfinder/edge.pem", bind_options="alpn h2,http/1.1",
                frontend_options=["timeout client 60s"], backend_options=["timeout server 60s"]),
    ]
    text = render(services, SETTINGS, {}).text
    assert tail(text) == golden("port_options.cfg", tail(text))
    valid(services)


def test_servers_draining_unhealthy_and_scaled_to_zero(valid):
    services = [
        service("/web", 10050, server(1), server(2, draining=True), server(3, healthy=False),
                server(4, healthy=True), server(5), vhosts=["web.example.com"]),
        service("/zero", 10051, vhosts=["zero.example.com"]),  # kept: its slots answer 503
    ]
    text = render(services, SETTINGS, {}).text
    assert tail(text) == golden("server_states.cfg", tail(text))
    valid(services)
    no_health = dataclasses.replace(SETTINGS, health_check=False)
    unchecked = render(services, no_health, {}).text
    assert "server s3 10.200.3.13:31003\n" in unchecked  # served: HAProxy's own checks decide


def test_group_filtering_and_deduplication():
    services = [
        service("/ext", 10060, server(1), group="external"),
        service("/int", 10061, server(2), group="internal"),
        service("/none", 10062, server(3), group=NO_GROUP),
        service("/both", 10063, server(4), group="external"),
        service("/both", 10063, server(4), group="internal"),
    ]
    external = parse_settings(groups="external")
    text = render(services, external, {}).text
    assert [line for line in text.splitlines() if line.startswith("backend ")] == [
        "backend both_10063", "backend ext_10060"]
    everything = render(services, SETTINGS, {})
    assert [line for line in everything.text.splitlines() if line.startswith("backend ")] == [
        "backend both_10063", "backend ext_10060", "backend int_10061", "backend none_10062"]
    assert everything.left_out == ()  # the same app port through two groups is not a conflict


def test_conflicts_leave_the_later_service_out(valid):
    services = [
        service("/a", 10070, server(1)),
        service("/b", 10071, server(2), bind_port=10070),  # same bind port as /a
        service("/c", 10072, server(3), bind_port=9090),  # the stats port
        service("/d", 80, server(4)),  # the http frontend's port
        service("/e", 10073, server(5), vhosts=["e.example.com"], path="/x\nhttp-request deny"),
        service("/a_10070", 10074, server(6)),
        service("/f", 10075, server(7), bind_port=10076, bind_addr="127.0.0.1"),
        service("/g", 10077, server(8), bind_port=10076, bind_addr="127.0.0.2"),  # other address: fine
    ]
    services[5] = msgspec.structs.replace(services[5], backend="a_10070")  # the backend name of /a
    result = render(services, SETTINGS, {})
    assert result.left_out == (
        LeftOut("external:/a_10070:10074", "backend name a_10070 is already used by external:/a:10070"),
        LeftOut("external:/b:10071", "port 10070 is already bound by external:/a:10070"),
        LeftOut("external:/c:10072", "port 9090 is the node's stats frontend"),
        LeftOut("external:/d:80", "port 80 is the node's http frontend"),
        LeftOut("external:/e:10073", "'/x\\nhttp-request deny' holds a line break or '#'"),
    )
    assert [line for line in result.text.splitlines() if line.startswith("frontend ")][3:] == [
        "frontend a_10070", "frontend f_10075", "frontend g_10077"]
    valid(services)


def test_a_tcp_service_with_a_vhost_is_not_routed_from_the_http_frontends(valid):
    services = [service("/raw", 10080, server(1), vhosts=["raw.example.com"], mode="tcp")]
    text = render(services, SETTINGS, {}).text
    assert "raw.example.com" not in text
    valid(services)


def test_same_input_same_text_whatever_the_order():
    services = [service(f"/app{n}", 10100 + n, server(n), vhosts=[f"app{n}.example.com"]) for n in range(5)]
    assert render(services, SETTINGS, {}).text == render(reversed(services), SETTINGS, {}).text
