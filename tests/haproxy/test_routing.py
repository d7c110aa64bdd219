"""Routing through a real HAProxy on loopback: the shared frontends, per-port frontends, TLS,
redirects, stickiness, auth and tcp mode, as rendered from Service records."""

import base64

from schemas.haproxy import Auth
from tests.haproxy.conftest import service
from tests.haproxy.loopback import free_ports, get

# crypt(3) hash of "secret" (openssl passwd -6 -salt wayfinder secret)
SECRET_HASH = "$6$wayfinder$IQNMWOxlHc2RSDBA90rQV0tBTuEf.XwWGo3Rnau6lCn3nIWNm4omf28JzlVsHTsy7YzMv3XmjvOOH5RNTb3kL1"


def test_vhost_routing_by_host_header(balancer, backends):
    a, b = backends(2)
    pa, pb = free_ports(2)
    balancer.apply([service("/a", pa, a, vhosts=["a.example.com"]),
                    service("/b", pb, b, vhosts=["b.example.com", "www.b.example.com"])])
    http = balancer.settings.ports.http
    assert get(http, host="a.example.com").body == "b1"
    assert get(http, host="www.b.example.com").body == "b2"
    assert get(http, host="B.example.com:80").body == "b2"  # case and port do not matter
    assert get(http, host="other.example.com").status == 503


def test_path_rules_and_weight_order(balancer, backends):
    web, api, v2 = backends(3)
    ports = free_ports(3)
    balancer.apply([
        service("/shop/web", ports[0], web, vhosts=["shop.example.com"]),
        service("/shop/api", ports[1], api, vhosts=["shop.example.com"], path="/api", weight=1),
        service("/shop/v2", ports[2], v2, vhosts=["shop.example.com"], path="/api/v2", weight=2),
    ])
    http = balancer.settings.ports.http
    assert get(http, "/", host="shop.example.com").body == "b1"
    assert get(http, "/api/x", host="shop.example.com").body == "b2"
    assert get(http, "/api/v2/x", host="shop.example.com").body == "b3"  # the heavier rule first


def test_per_port_and_app_id_frontends(balancer, backends):
    one, two = backends(2)
    ports = free_ports(3)
    balancer.apply([
        service("/one", ports[0], one),
        service("/two", ports[1], two, bind_port=ports[2]),  # HAPROXY_0_PORT: bound elsewhere
    ])
    assert get(ports[0]).body == "b1"
    assert get(ports[2]).body == "b2"
    appid = balancer.settings.ports.appid
    assert get(appid, headers={"X-Marathon-App-Id": "/two"}).body == "b2"
    assert get(appid, headers={"X-Marathon-App-Id": "/none"}).status == 503


def test_https_by_sni_with_the_self_signed_certificate(balancer, backends):
    secure, other = backends(2)
    ports = free_ports(2)
    balancer.apply([service("/secure", ports[0], secure, vhosts=["secure.example.com"]),
                    service("/other", ports[1], other, vhosts=["other.example.com"])])
    https = balancer.settings.ports.https
    reply = get(https, host="secure.example.com", sni="secure.example.com")
    assert (reply.status, reply.body) == (200, "b1")
    assert get(https, host="x", sni="other.example.com").body == "b2"  # SNI decides, as marathon-lb
    assert get(https, sni="unknown.example.com").status == 503


def test_redirect_to_https_only_from_the_http_frontend(balancer, backends):
    (app,) = backends(1)
    (port,) = free_ports(1)
    balancer.apply([service("/r", port, app, vhosts=["r.example.com"], redirect_to_https=True, use_hsts=True)])
    reply = get(balancer.settings.ports.http, "/path?q=1", host="r.example.com")
    assert reply.status == 301 and reply.headers["location"] == "https://r.example.com/path?q=1"
    tls = get(balancer.settings.ports.https, host="r.example.com", sni="r.example.com")
    assert tls.body == "b1" and tls.headers["strict-transport-security"] == "max-age=15768000"
    assert get(port).body == "b1"  # the service port is not redirected


def test_sticky_cookie_keeps_a_client_on_one_server(balancer, backends):
    first, second = backends(2)
    (port,) = free_ports(1)
    balancer.apply([service("/sticky", port, first, second, vhosts=["s.example.com"], sticky=True)])
    reply = get(port)
    cookie = reply.headers["set-cookie"].split(";")[0]
    assert cookie.startswith("mesosphere_server_id=s")
    assert {get(port, headers={"Cookie": cookie}).body for _ in range(6)} == {reply.body}
    assert {get(port).body for _ in range(4)} == {"b1", "b2"}  # without it: round robin


def test_tcp_mode_passes_bytes_through(balancer, backends):
    (app,) = backends(1)
    (port,) = free_ports(1)
    balancer.apply([service("/raw", port, app, mode="tcp")])
    reply = get(port, host="anything")
    assert reply.body == "b1" and reply.headers["x-backend-host"] == "anything"


def test_auth_holds_on_every_entry_point(balancer, backends):
    (app,) = backends(1)
    (port,) = free_ports(1)
    balancer.apply([service("/private", port, app, vhosts=["p.example.com"], auth=Auth("private", "admin", SECRET_HASH))])
    ports = balancer.settings.ports
    token = base64.b64encode(b"admin:secret").decode()
    entries = [
        dict(port=port),
        dict(port=ports.http, host="p.example.com"),
        dict(port=ports.https, host="p.example.com", sni="p.example.com"),
        dict(port=ports.appid, headers={"X-Marathon-App-Id": "/private"}),
    ]
    for entry in entries:
        assert get(**entry).status == 401, entry
        headers = {**entry.get("headers", {}), "Authorization": f"Basic {token}"}
        assert get(**{**entry, "headers": headers}).body == "b1", entry


def test_proxypass_strips_the_prefix_and_revproxy_restores_it(balancer, backends):
    (app,) = backends(1)
    (port,) = free_ports(1)
    balancer.apply([service("/legacy", port, app, vhosts=["l.example.com"], proxypass_path="/legacy",
                            redirect_path="/legacy/home")])
    reply = get(port, "/legacy/page", host="anything")
    assert reply.headers["x-backend-path"] == "/page" and reply.headers["x-backend-host"] == "l.example.com"
    root = get(port, "/")
    assert root.status == 301 and root.headers["location"] == "/legacy/home"


def test_network_acl_denies_other_sources(balancer, backends):
    (app,) = backends(1)
    allowed, denied = free_ports(2)
    balancer.apply([service("/open", allowed, app, network_allowed=["127.0.0.0/8"]),
                    service("/closed", denied, app, network_allowed=["10.0.0.0/8"])])
    assert get(allowed).body == "b1"
    assert get(denied).status == 403


def test_stats_page_and_prometheus_metrics(balancer, backends):
    (app,) = backends(1)
    (port,) = free_ports(1)
    balancer.apply([service("/web", port, app)])
    stats = balancer.settings.ports.stats
    metrics = get(stats, "/metrics")
    assert metrics.status == 200 and f'haproxy_server_uweight{{proxy="web_{port}",server="s1"}} 1' in metrics.body
    assert get(stats, "/haproxy?stats;csv").body.startswith("# pxname,svname")
    assert get(stats, "/_haproxy_health_check").status == 200
