"""The partial planner against the full one: for the same change from the same kept state,
`plan_changes` (only the changed keys) must emit exactly what `plan` (every VIP) emits, and the
state `advance` patches in place must equal the full plan's `after`, so a later full plan (what
`resync` runs) finds nothing to do.
"""

import copy

import pytest

from appliers.l4lb.desired import DesiredVips
from appliers.l4lb.model import TableState
from appliers.l4lb.plan import Flush, advance, plan, plan_changes
from tests.unit.l4lb_applier.conftest import vip

WEB, DNS, BIG, DRAINED, WEB6 = "tcp/11.0.0.1/80", "udp/11.0.0.1/53", "tcp/11.0.0.10/80", "tcp/11.0.0.2/443", "tcp/fd00:11::1/80"
B11, B12, B13 = ("10.200.2.11", 8080, 1), ("10.200.2.12", 8080, 1), ("10.200.2.13", 8080, 1)

CHANGES = {
    "backend added": {WEB: vip(WEB, B11, B12, B13)[1]},
    "backend removed": {WEB: vip(WEB, B12)[1]},
    "weight to 0": {WEB: vip(WEB, B11, ("10.200.2.12", 8080, 0))[1]},
    "last backend drained, address shared": {DNS: vip(DNS, ("10.200.2.13", 53, 0))[1]},
    "weights change": {BIG: vip(BIG, ("10.200.2.10", 8080, 1), ("10.200.2.9", 8080, 1))[1]},
    "udp backend replaced": {DNS: vip(DNS, ("10.200.2.14", 53, 1))[1]},
    "vip added on a new address": dict([vip("tcp/11.0.0.3/80", B11)]),
    "vip added on a known address": dict([vip("tcp/11.0.0.1/8080", B12)]),
    "vip removed, address shared": {DNS: None},
    "vip removed with its address": {BIG: None},
    "drained vip gets a backend": {DRAINED: vip(DRAINED, ("10.200.2.11", 8443, 1))[1]},
    "ipv6 backend removed": {WEB6: vip(WEB6, ("fd00:200::12", 8080, 1))[1]},
    "several at once": {WEB: None, DNS: None, **dict([vip("udp/11.0.0.7/53", ("10.200.2.13", 53, 2))])},
    "unchanged record": {WEB: vip(WEB, B12, B11, ("10.200.2.13", 8080, 0))[1]},
}


def kept(golden_vips) -> tuple[DesiredVips, dict[str, TableState]]:
    """The desired table and the state a full plan of it left (what the applier keeps)."""
    table = DesiredVips()
    table.update(golden_vips)
    return table, plan(table.kernel, {}, True).after


def both(table: DesiredVips, state: dict[str, TableState], changes, initialized=True):
    keys, _ = table.update(changes)
    full = plan(table.kernel, copy.deepcopy(state), initialized)
    partial = plan_changes({k: table.kernel[k] for k in keys if k in table.kernel}, state, keys, initialized)
    return full, partial


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_partial_plan_equals_the_full_plan(golden_vips, kind):
    table, state = kept(golden_vips)
    full, partial = both(table, state, CHANGES[kind])
    assert partial is not None and bool(partial.text) == (kind != "unchanged record")
    assert partial.text == full.text and full.rebuilt == []
    assert (partial.changed, partial.removed, partial.flushes) == (full.changed, full.removed, full.flushes)
    after = advance(state, partial)
    for family, whole in full.after.items():
        assert (after[family].vips, after[family].endpoints, after[family].vip_ips) == (whole.vips, whole.endpoints, whole.vip_ips)
    assert plan(table.kernel, after, True).text == ""  # what a resync would find: nothing


def test_the_kept_index_follows_a_run_of_changes(golden_vips):
    table, state = kept(golden_vips)
    for kind in sorted(CHANGES):  # one after another on the same kept state
        full, partial = both(table, state, CHANGES[kind])
        assert partial is not None and partial.text == full.text, kind
        state = advance(state, partial)
    fresh = TableState(vips=dict(state["ip"].vips), endpoints=dict(state["ip"].endpoints))
    assert state["ip"].index() == fresh.index()
    assert plan(table.kernel, state, True).text == ""


def test_udp_backend_replaced_is_flushed(golden_vips):
    table, state = kept(golden_vips)
    _, partial = both(table, state, CHANGES["udp backend replaced"])
    assert partial.flushes == [Flush("11.0.0.1", 53, frozenset({("10.200.2.14", 53)}))]


@pytest.mark.parametrize("change", [
    {WEB: vip(WEB, *[(f"10.200.2.{i}", 8080, 1) for i in range(1, 10)])[1]},  # 9 slots > mod8
    {WEB6: None},  # the last IPv6 VIP: the ip6 table goes
])
def test_table_level_changes_are_left_to_the_full_plan(golden_vips, change):
    table, state = kept(golden_vips)
    full, partial = both(table, state, change)
    assert partial is None and full.rebuilt


def test_the_first_ipv6_vip_is_left_to_the_full_plan(golden_vips):
    table, state = kept({k: v for k, v in golden_vips.items() if ":" not in k})
    full, partial = both(table, state, {WEB6: golden_vips[WEB6]})
    assert partial is None and full.rebuilt == ["ip6"]


def test_before_initialized_a_removal_keeps_the_kernel_entry(golden_vips):
    table, state = kept(golden_vips)
    full, partial = both(table, state, {BIG: None}, initialized=False)
    assert partial is not None and partial.text == full.text == ""


def test_desired_table_reports_touched_keys_and_refuses_duplicates():
    table = DesiredVips()
    keys, fresh = table.update(dict([vip(WEB, B11)]))
    assert keys == {("11.0.0.1", "tcp", 80)} and fresh == []
    assert table.update(dict([vip(WEB, B11)])) == (set(), [])  # an equal record changes nothing
    upper = vip("TCP/11.0.0.1/80", B12)[1]
    keys, fresh = table.update({"TCP/11.0.0.1/80": upper})
    assert keys == set() and fresh == ["TCP/11.0.0.1/80: same VIP as tcp/11.0.0.1/80"]
    keys, _ = table.update({WEB: None})  # the holder goes: the duplicate takes the VIP over
    assert keys == {("11.0.0.1", "tcp", 80)} and table.names[("11.0.0.1", "tcp", 80)] == "TCP/11.0.0.1/80"
    assert table.kernel[("11.0.0.1", "tcp", 80)].slots == (("10.200.2.12", 8080),) and table.refused == []
