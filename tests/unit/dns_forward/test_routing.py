"""Routing: which upstream group a name goes to, upstream parsing, and the dcos-dns renames."""

import pytest

from appliers.dns.routing import Routes, Upstream, parse_upstream, rename

ROUTES = Routes(
    default=["192.0.2.1", "192.0.2.2:5353"],
    zones={"corp.example": ["198.51.100.1"], "deep.corp.example.": ["198.51.100.2:54"]},
    mesos=["10.0.0.1:61053", "10.0.0.2:61053"],
)


@pytest.mark.parametrize("qname,group,upstreams", [
    ("leader.mesos.", "mesos", ["10.0.0.1:61053", "10.0.0.2:61053"]),
    ("mesos.", "mesos", ["10.0.0.1:61053", "10.0.0.2:61053"]),
    ("web.corp.example.", "zone corp.example.", ["198.51.100.1:53"]),
    ("corp.example.", "zone corp.example.", ["198.51.100.1:53"]),
    ("a.b.deep.corp.example.", "zone deep.corp.example.", ["198.51.100.2:54"]),  # the deepest zone wins
    ("notcorp.example.", "default", ["192.0.2.1:53", "192.0.2.2:5353"]),  # label boundaries only
    ("example.", "default", ["192.0.2.1:53", "192.0.2.2:5353"]),
    ("notmesos.", "default", ["192.0.2.1:53", "192.0.2.2:5353"]),
    (".", "default", ["192.0.2.1:53", "192.0.2.2:5353"]),
])
def test_route(qname, group, upstreams):
    route = ROUTES.route(qname)
    assert (route.group, [str(u) for u in route.upstreams]) == (group, upstreams)


def test_mesos_without_masters_takes_the_zones_and_default():
    routes = Routes(default=["192.0.2.1"], zones={"marathon.mesos": ["192.0.2.9"]})
    assert routes.route("web.marathon.mesos.").group == "zone marathon.mesos."
    assert routes.route("leader.mesos.").group == "default"
    assert Routes().route("www.example.").upstreams == ()  # nobody to ask


@pytest.mark.parametrize("text,upstream", [
    ("192.0.2.1", Upstream("192.0.2.1", 53)),
    (" 192.0.2.1:5353 ", Upstream("192.0.2.1", 5353)),
    ("2001:db8::0:1", Upstream("2001:db8::1", 53)),
    ("[2001:db8::1]:54", Upstream("2001:db8::1", 54)),
    ("[::1]", Upstream("::1", 53)),
])
def test_parse_upstream(text, upstream):
    assert parse_upstream(text) == upstream


@pytest.mark.parametrize("text", ["dns.example", "192.0.2.1:0", "192.0.2.1:70000", "[::1]x", "1.2.3.4:x"])
def test_bad_upstreams_are_refused(text):
    with pytest.raises(ValueError):
        parse_upstream(text)


def test_repeated_upstreams_count_once_and_root_zone_is_refused():
    assert Routes(["192.0.2.1", "192.0.2.1:53", "192.0.2.2"]).default == (
        Upstream("192.0.2.1"), Upstream("192.0.2.2"))
    with pytest.raises(ValueError):
        Routes(zones={".": ["192.0.2.1"]})


@pytest.mark.parametrize("qname,internal,back", [
    ("web.fw.dclb.thisdcos.directory.", "web.fw.l4lb.thisdcos.directory.", {
        "web.fw.l4lb.thisdcos.directory.": "web.fw.dclb.thisdcos.directory.",
        "thisdcos.directory.": "thisdcos.directory.",  # the SOA owner is the client's zone already
        "web.marathon.mesos.": "web.marathon.mesos.",
    }),
    ("web.fw.dclb.thisdcos.global.", "web.fw.l4lb.thisdcos.directory.", {
        "web.fw.l4lb.thisdcos.directory.": "web.fw.dclb.thisdcos.global.",
        "thisdcos.directory.": "thisdcos.global.",
        "x.dcos.thisdcos.directory.": "x.dcos.thisdcos.global.",
    }),
    ("web.fw.autoip.dcos.thisdcos.global.", "web.fw.autoip.dcos.thisdcos.directory.", {
        "web.fw.autoip.dcos.thisdcos.directory.": "web.fw.autoip.dcos.thisdcos.global.",
        "web.fw.l4lb.thisdcos.directory.": "web.fw.l4lb.thisdcos.global.",
        "ns.spartan.": "ns.spartan.",
    }),
    ("thisdcos.global.", "thisdcos.directory.", {"thisdcos.directory.": "thisdcos.global."}),
])
def test_renames(qname, internal, back):
    found = rename(qname)
    assert found.internal == internal
    assert {name: found.back(name) for name in back} == back


@pytest.mark.parametrize("qname", [
    "web.fw.l4lb.thisdcos.directory.", "xthisdcos.global.", "dclb.thisdcos.global.example.", "www.example.com.",
])
def test_not_renamed(qname):
    assert rename(qname) is None
