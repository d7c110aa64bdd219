"""The whole rendered table compared as text (kube-proxy's TestOverallNFTablesRules habit)."""

from appliers.l4lb.desired import desired_vips, slots_of
from appliers.l4lb.model import IP, IP6
from appliers.l4lb.render import render_table, set_count
from schemas.l4lb import Backend, Vip
from tests.unit.l4lb_applier.conftest import golden


def test_full_ipv4_table_matches_golden(golden_vips):
    desired, _, refused = desired_vips(golden_vips)
    v4 = [v for v in desired.values() if v.family == IP]
    text = render_table(IP, v4, set_count(v4))
    assert refused == []
    assert text == golden("wayfinder-ip.nft", text)


def test_full_ipv6_table_matches_golden(golden_vips):
    desired, _, _ = desired_vips(golden_vips)
    v6 = [v for v in desired.values() if v.family == IP6]
    text = render_table(IP6, v6, set_count(v6))
    assert text == golden("wayfinder-ip6.nft", text)


def test_drained_vip_has_no_element_at_all(golden_vips):
    desired, _, _ = desired_vips(golden_vips)
    text = render_table(IP, desired.values(), 8)
    assert "11.0.0.2" not in text  # traffic to it falls through: nothing answers the VIP


def test_weights_repeat_slots_reduced_by_gcd_in_numeric_address_order():
    v = Vip("tcp", "11.0.0.1", 80, [Backend("10.0.0.10", 80, 6, "a"), Backend("10.0.0.9", 80, 3, "b"), Backend("10.0.0.8", 80, 0, "c")])
    slots, drained, problems = slots_of("11.0.0.1", v)
    assert slots == (("10.0.0.9", 80), ("10.0.0.10", 80), ("10.0.0.10", 80))
    assert drained == {("10.0.0.8", 80)} and problems == []


def test_equal_weights_get_a_slot_each_and_ipv6_sorts_numerically():
    v = Vip("tcp", "fd00:11::1", 80, [Backend("fd00::10", 80, 2, "a"), Backend("fd00::9", 80, 2, "b"),
                                      Backend("fd00::9", 79, 2, "c"), Backend("fd00::a", 80, 0, "d")])
    slots, drained, problems = slots_of("fd00:11::1", v)
    assert slots == (("fd00::9", 79), ("fd00::9", 80), ("fd00::10", 80))  # 0x9 < 0x10; text order would differ
    assert drained == {("fd00::a", 80)} and problems == []


def test_bad_records_are_refused_not_programmed():
    vips = {
        "sctp/11.0.0.1/80": Vip("sctp", "11.0.0.1", 80, [Backend("10.0.0.1", 80, 1, "a")]),
        "tcp/11.0.0.999/80": Vip("tcp", "11.0.0.999", 80, [Backend("10.0.0.1", 80, 1, "a")]),
        "tcp/11.0.0.2/80": Vip("tcp", "11.0.0.2", 80, [Backend("fd00::1", 80, 1, "v6"), Backend("10.0.0.1", 80, 1, "a")]),
    }
    desired, keys, refused = desired_vips(vips)
    assert list(keys.values()) == ["tcp/11.0.0.2/80"]
    assert desired[("11.0.0.2", "tcp", 80)].slots == (("10.0.0.1", 80),)
    assert len(refused) == 3


def test_set_count_grows_in_powers_of_two():
    def with_backends(n):
        v = Vip("tcp", "11.0.0.1", 80, [Backend(f"10.0.0.{i}", 80, 1, "t") for i in range(1, n + 1)])
        return desired_vips({"tcp/11.0.0.1/80": v})[0].values()

    assert [set_count(with_backends(n)) for n in (0, 3, 8, 9, 40)] == [8, 8, 8, 16, 64]
