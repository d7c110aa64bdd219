"""Planner scenarios: each starts from a kernel state and checks the ONE transaction text.

The kernel state is either a real nft 1.0.6 listing of the golden table (golden/listing-ip.*)
or the state a previous plan left (`Plan.after`), exactly what its atomic commit produces.
"""

import orjson

from appliers.l4lb.desired import desired_vips
from appliers.l4lb.model import TableState, table_state
from appliers.l4lb.plan import Flush, covered, plan, plan_routes
from tests.unit.l4lb_applier.conftest import GOLDEN, vip

WEB = "tcp/11.0.0.1/80"
DNS = "udp/11.0.0.1/53"


def kernel_listing() -> dict[str, TableState]:
    listing = orjson.loads((GOLDEN / "listing-ip.json").read_bytes())
    return {"ip": table_state(listing, (GOLDEN / "listing-ip.terse").read_text())}


def v4_only(vips):
    return {k: v for k, v in vips.items() if ":" not in k}


def step(vips, actual, initialized=True):
    return plan(desired_vips(vips)[0], actual, initialized)


def test_kernel_listing_of_the_golden_table_is_converged(golden_vips):
    p = step(v4_only(golden_vips), kernel_listing())
    assert p.text == "" and p.changed == [] and p.removed == []


def test_empty_kernel_gets_a_full_build():
    p = step(dict([vip(WEB, ("10.200.2.11", 8080, 1))]), {})
    assert p.rebuilt == ["ip"]
    assert p.text.startswith("add table ip wayfinder\ndelete table ip wayfinder\ntable ip wayfinder {\n")
    assert p.changed == [("11.0.0.1", "tcp", 80)]
    assert step(dict([vip(WEB, ("10.200.2.11", 8080, 1))]), p.after).text == ""


def test_add_vip_is_element_only(golden_vips):
    vips = {**v4_only(golden_vips), **dict([vip("tcp/11.0.0.3/80", ("10.200.2.11", 8080, 1))])}
    p = step(vips, kernel_listing())
    assert p.text == (
        "add element ip wayfinder vip_ips { 11.0.0.3 }\n"
        "add element ip wayfinder endpoints { 11.0.0.3 . tcp . 80 . 0 : 10.200.2.11 . 8080 }\n"
        "add element ip wayfinder k1 { 11.0.0.3 . tcp . 80 }\n"
    )
    assert p.changed == [("11.0.0.3", "tcp", 80)] and p.rebuilt == []


def test_remove_backend_replaces_verdict_and_slots_and_deletes_the_stale_slot(golden_vips):
    vips = {**v4_only(golden_vips), **dict([vip(WEB, ("10.200.2.12", 8080, 1))])}  # .11 is gone
    p = step(vips, kernel_listing())
    assert p.text == (
        "delete element ip wayfinder k2 { 11.0.0.1 . tcp . 80 }\n"
        "delete element ip wayfinder endpoints { 11.0.0.1 . tcp . 80 . 0, 11.0.0.1 . tcp . 80 . 1 }\n"
        "add element ip wayfinder endpoints { 11.0.0.1 . tcp . 80 . 0 : 10.200.2.12 . 8080 }\n"
        "add element ip wayfinder k1 { 11.0.0.1 . tcp . 80 }\n"
    )
    assert p.flushes == []  # TCP: established connections end on their own


def test_weight_change_moves_slots(golden_vips):
    vips = {**v4_only(golden_vips), **dict([vip("tcp/11.0.0.10/80", ("10.200.2.10", 8080, 1), ("10.200.2.9", 8080, 1))])}
    p = step(vips, kernel_listing())
    assert p.text == (
        "delete element ip wayfinder k3 { 11.0.0.10 . tcp . 80 }\n"
        "delete element ip wayfinder endpoints { 11.0.0.10 . tcp . 80 . 2 }\n"
        "add element ip wayfinder k2 { 11.0.0.10 . tcp . 80 }\n"
    )


def test_drain_last_backend_removes_the_vip_but_flushes_nothing(golden_vips):
    vips = {**v4_only(golden_vips), **dict([vip(DNS, ("10.200.2.13", 53, 0))])}
    p = step(vips, kernel_listing())
    assert p.text == (
        "delete element ip wayfinder k1 { 11.0.0.1 . udp . 53 }\n"
        "delete element ip wayfinder endpoints { 11.0.0.1 . udp . 53 . 0 }\n"
    )
    assert p.removed == [("11.0.0.1", "udp", 53)] and p.flushes == []


def test_removed_udp_backend_is_flushed(golden_vips):
    vips = {**v4_only(golden_vips), **dict([vip(DNS, ("10.200.2.14", 53, 1))])}
    p = step(vips, kernel_listing())
    assert p.flushes == [Flush("11.0.0.1", 53, frozenset({("10.200.2.14", 53)}))]


def test_remove_vip_prunes_its_elements_and_its_address(golden_vips):
    vips = v4_only(golden_vips)
    del vips["tcp/11.0.0.10/80"]
    p = step(vips, kernel_listing())
    assert p.text == (
        "delete element ip wayfinder k3 { 11.0.0.10 . tcp . 80 }\n"
        "delete element ip wayfinder endpoints { 11.0.0.10 . tcp . 80 . 0, 11.0.0.10 . tcp . 80 . 1, 11.0.0.10 . tcp . 80 . 2 }\n"
        "delete element ip wayfinder vip_ips { 11.0.0.10 }\n"
    )
    assert p.removed == [("11.0.0.10", "tcp", 80)]


def test_no_prune_before_initialized_then_prune(golden_vips):
    partial = dict([vip(WEB, ("10.200.2.11", 8080, 1), ("10.200.2.12", 8080, 1))])  # half the input read
    before = step(partial, kernel_listing(), initialized=False)
    assert before.text == "" and before.removed == [] and before.flushes == []
    after = step(partial, kernel_listing(), initialized=True)
    assert sorted(after.removed) == [("11.0.0.1", "udp", 53), ("11.0.0.10", "tcp", 80)]
    assert after.flushes == [Flush("11.0.0.1", 53)]


def test_broken_structure_gets_a_full_rebuild_that_keeps_unknown_vips_before_initialized(golden_vips):
    broken = kernel_listing()
    del broken["ip"].blocks[("chain", "prerouting")]  # someone deleted our hook chain
    p = step(dict([vip(WEB, ("10.200.2.11", 8080, 1))]), broken, initialized=False)
    assert p.rebuilt == ["ip"] and p.text.startswith("add table ip wayfinder\ndelete table ip wayfinder\n")
    assert "11.0.0.10 . tcp . 80 . 2 : 10.200.2.10 . 8080" in p.text  # kept: not yet provably stale
    assert p.after["ip"].vips[("11.0.0.1", "tcp", 80)] == "k1"


def test_hand_edited_rule_is_a_broken_structure(golden_vips):
    edited = kernel_listing()
    edited["ip"].blocks[("chain", "postrouting")] += " counter"
    assert step(v4_only(golden_vips), edited).rebuilt == ["ip"]


def test_more_slots_than_sets_forces_a_rebuild(golden_vips):
    big = dict([vip(WEB, *[(f"10.200.2.{i}", 8080, 1) for i in range(1, 10)])])
    p = step({**v4_only(golden_vips), **big}, kernel_listing())
    assert p.rebuilt == ["ip"] and "set k16 {" in p.text and "numgen random mod 16 map @endpoints" in p.text


def test_ipv6_table_appears_with_the_first_ipv6_vip_and_goes_with_the_last(golden_vips):
    first = step(golden_vips, kernel_listing())
    assert first.rebuilt == ["ip6"] and "table ip6 wayfinder {" in first.text
    assert step(golden_vips, first.after).text == ""
    last = step(v4_only(golden_vips), first.after)
    assert last.text == "delete table ip6 wayfinder\n" and last.removed == [("fd00:11::1", "tcp", 80)]


def test_node_routes_cover_ranges_and_outliers_and_prune_only_once_initialized():
    add, delete = plan_routes(["11.0.0.0/8"], {"11.1.2.3", "12.0.0.1"}, {"13.0.0.1/32"}, initialized=False)
    assert (add, delete) == (["11.0.0.0/8", "12.0.0.1/32"], [])
    assert plan_routes(["11.0.0.0/8"], {"11.1.2.3"}, {"13.0.0.1/32", "11.0.0.0/8"}, True) == ([], ["13.0.0.1/32"])


def test_covered_tells_whether_addresses_need_host_routes():
    assert covered(["11.0.0.0/8", "fd00:11::/64"], ["11.1.2.3", "fd00:11::5"])
    assert not covered(["11.0.0.0/8"], ["11.1.2.3", "12.0.0.1"])


def test_a_vip_put_in_a_second_slot_set_is_taken_out_of_both_and_put_back(golden_vips):
    listing = orjson.loads((GOLDEN / "listing-ip.json").read_bytes())
    for item in listing["nftables"]:
        if item.get("set", {}).get("name") == "k5":
            item["set"]["elem"] = [{"concat": ["11.0.0.10", "tcp", 80]}]
    drifted = {"ip": table_state(listing, (GOLDEN / "listing-ip.terse").read_text())}
    assert drifted["ip"].kernel_vips()[("11.0.0.10", "tcp", 80)] is None
    p = step(v4_only(golden_vips), drifted)
    assert p.text == (
        "delete element ip wayfinder k3 { 11.0.0.10 . tcp . 80 }\n"
        "delete element ip wayfinder k5 { 11.0.0.10 . tcp . 80 }\n"
        "add element ip wayfinder k3 { 11.0.0.10 . tcp . 80 }\n"
    )


def test_a_hand_made_element_with_a_comment_is_seen_and_removed(golden_vips):
    """nft lists an element with a comment as {"elem": {"val": ..., "comment": ...}}: still drift."""
    listing = orjson.loads((GOLDEN / "listing-ip.json").read_bytes())
    for item in listing["nftables"]:
        if item.get("set", {}).get("name") == "k5":
            item["set"]["elem"] = [{"elem": {"val": {"concat": ["11.0.0.99", "tcp", 99]}, "comment": "by hand"}}]
        if item.get("set", {}).get("name") == "vip_ips":
            item["set"]["elem"].append({"elem": {"val": "11.0.0.99", "comment": "by hand"}})
    drifted = {"ip": table_state(listing, (GOLDEN / "listing-ip.terse").read_text())}
    assert drifted["ip"].vips[("11.0.0.99", "tcp", 99)] == "k5"
    assert "11.0.0.99" in drifted["ip"].vip_ips
    p = step(v4_only(golden_vips), drifted)
    assert p.text == ("delete element ip wayfinder k5 { 11.0.0.99 . tcp . 99 }\n"
                      "delete element ip wayfinder vip_ips { 11.0.0.99 }\n")
