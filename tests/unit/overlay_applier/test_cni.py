"""The CNI config and the Docker network of a lease, exactly; the masquerade table's text and
its read-back."""

from __future__ import annotations

import orjson

from appliers.overlay.cni import cni_config, config_files, docker_command_line, docker_network
from appliers.overlay.configdir import ConfigDir
from appliers.overlay.model import Nat
from appliers.overlay.nat import read_nat, render_replace
from tests.unit.overlay_applier.leases import lease


def test_cni_config_for_the_first_half():
    assert cni_config(lease(4)) == {
        "cniVersion": "0.4.0",
        "name": "dcos",
        "plugins": [
            {"type": "bridge", "bridge": "m-dcos", "isGateway": True, "ipMasq": False, "mtu": 1420,
             "ipam": {"type": "host-local",
                      "ranges": [[{"subnet": "9.0.3.0/25", "rangeStart": "9.0.3.2", "rangeEnd": "9.0.3.126",
                                   "gateway": "9.0.3.1"}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def test_cni_config_ipv6_ranges_have_no_broadcast():
    ipam = cni_config(lease(2, "dcos6"))["plugins"][0]["ipam"]
    assert ipam == {"type": "host-local", "routes": [{"dst": "::/0"}], "ranges": [[{
        "subnet": "fd01:b:0:0:2::/81", "rangeStart": "fd01:b::2:0:0:2", "rangeEnd": "fd01:b::2:7fff:ffff:ffff",
        "gateway": "fd01:b::2:0:0:1"}]]}


def test_config_files_are_named_by_overlay_and_stable(tmp_path):
    files = config_files([lease(1), lease(1, "dcos6")])
    assert sorted(files) == ["dcos.conflist", "dcos6.conflist"]
    assert orjson.loads(files["dcos.conflist"]) == cni_config(lease(1))
    directory = ConfigDir(tmp_path / "cni")
    for name, content in files.items():
        directory.write(name, content)
    (tmp_path / "cni" / "notes.txt").write_text("not ours")
    assert directory.read() == files
    directory.remove("dcos6.conflist")
    assert sorted(p.name for p in (tmp_path / "cni").iterdir()) == ["dcos.conflist", "notes.txt"]


def test_docker_network_command():
    assert docker_command_line(docker_network(lease(4))) == (
        "docker network create --driver bridge --subnet 9.0.3.128/25 --gateway 9.0.3.129"
        " --opt com.docker.network.bridge.name=d-dcos --opt com.docker.network.bridge.enable_ip_masquerade=false"
        " --opt com.docker.network.driver.mtu=1420 dcos")
    assert docker_command_line(docker_network(lease(2, "dcos6"))) == (
        "docker network create --driver bridge --ipv6 --subnet fd01:b::2:8000:0:0/81 --gateway fd01:b::2:8000:0:1"
        " --opt com.docker.network.bridge.name=d-dcos6 --opt com.docker.network.bridge.enable_ip_masquerade=false"
        " --opt com.docker.network.driver.mtu=1420 dcos6")


NAT = Nat(frozenset({"9.0.0.0/24"}), frozenset({"9.0.0.0/24", "9.0.1.0/24", "9.0.2.5/32"}))


def test_masquerade_text():
    assert render_replace(NAT) == """\
table inet wayfinder_overlay {}
delete table inet wayfinder_overlay
table inet wayfinder_overlay {
  set sources4 { type ipv4_addr; flags interval; elements = { 9.0.0.0/24 }; }
  set overlay4 { type ipv4_addr; flags interval; elements = { 9.0.0.0/24, 9.0.1.0/24, 9.0.2.5/32 }; }
  set sources6 { type ipv6_addr; flags interval; }
  set overlay6 { type ipv6_addr; flags interval; }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr @sources4 ip daddr != @overlay4 masquerade
    ip6 saddr @sources6 ip6 daddr != @overlay6 masquerade
  }
}
"""


def _listing(rules: list[list[dict]]) -> dict:
    def match(proto, field, op, right):
        return {"match": {"op": op, "left": {"payload": {"protocol": proto, "field": field}}, "right": right}}

    def set_(name, kind, elem=None):
        body = {"family": "inet", "name": name, "table": "wayfinder_overlay", "type": kind, "flags": ["interval"]}
        return {"set": {**body, "elem": elem} if elem else body}

    return {"nftables": [
        {"metainfo": {}}, {"table": {"family": "inet", "name": "wayfinder_overlay"}},
        set_("sources4", "ipv4_addr", [{"prefix": {"addr": "9.0.0.0", "len": 24}}]),
        set_("overlay4", "ipv4_addr", [{"prefix": {"addr": "9.0.0.0", "len": 24}},
                                       {"range": ["9.0.1.0", "9.0.1.255"]}, "9.0.2.5"]),
        set_("sources6", "ipv6_addr"), set_("overlay6", "ipv6_addr"),
        {"chain": {"family": "inet", "name": "postrouting", "type": "nat", "hook": "postrouting", "prio": 100,
                   "policy": "accept"}},
        *({"rule": {"chain": "postrouting", "expr": expr}} for expr in rules),
    ]}


def test_masquerade_read_back():
    ours = [[_m("ip", "saddr", "==", "@sources4"), _m("ip", "daddr", "!=", "@overlay4"), {"masquerade": None}],
            [_m("ip6", "saddr", "==", "@sources6"), _m("ip6", "daddr", "!=", "@overlay6"), {"masquerade": None}]]
    assert read_nat(_listing(ours)) == NAT
    assert read_nat(_listing(ours[:1])) == Nat(NAT.sources, NAT.overlay, intact=False)


def _m(proto, field, op, right):
    return {"match": {"op": op, "left": {"payload": {"protocol": proto, "field": field}}, "right": right}}
