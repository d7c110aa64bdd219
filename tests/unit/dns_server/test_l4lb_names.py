"""VIP names for the node's DNS: only named VIPs, one record per address, TTL 5."""

from appliers.dns.l4lb_names import changed_sets, vip_records
from appliers.dns.records import record
from schemas.l4lb import Backend, Vip

WEB = "shopweb.marathon.l4lb.thisdcos.directory"
B = [Backend("10.0.0.1", 8080, 1, "t1")]


def test_named_vips_give_a_and_aaaa_once_per_address():
    vips = [
        Vip("tcp", "11.1.2.3", 80, B, name="/shop/web", framework="marathon", dns=WEB),
        Vip("udp", "11.1.2.3", 80, B, name="/shop/web", framework="marathon", dns=WEB),
        Vip("tcp", "fd01:c::5", 80, B, name="/shop/web", framework="marathon", dns=WEB),
        Vip("tcp", "10.9.9.9", 5000, B),  # an IP VIP has no name
    ]
    assert vip_records(vips) == {
        (WEB + ".", "A"): [record(WEB + ".", "A", 5, "11.1.2.3")],
        (WEB + ".", "AAAA"): [record(WEB + ".", "AAAA", 5, "fd01:c::5")],
    }


def test_changes_upsert_new_sets_and_remove_gone_ones():
    before = vip_records([Vip("tcp", "11.1.2.3", 80, B, name="/a", framework="marathon", dns="a.marathon.l4lb.thisdcos.directory")])
    after = vip_records([Vip("tcp", "11.1.2.4", 80, B, name="/b", framework="marathon", dns="b.marathon.l4lb.thisdcos.directory")])
    assert changed_sets(before, after) == {
        ("b.marathon.l4lb.thisdcos.directory.", "A"): [record("b.marathon.l4lb.thisdcos.directory.", "A", 5, "11.1.2.4")],
        ("a.marathon.l4lb.thisdcos.directory.", "A"): [],
    }
    assert changed_sets(after, after) == {}
