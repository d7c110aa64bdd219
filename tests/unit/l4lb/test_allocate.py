"""Named-VIP IP allocation: stable while wanted, collision-free, released, deterministic."""

import hashlib
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.l4lb.allocate import DEFAULT_RANGES, allocate, blocked_offsets, candidate, offset_of, place, usable_offsets

V4, V6 = DEFAULT_RANGES[4], DEFAULT_RANGES[6]
WEB, API, DB = ("/web", "marathon"), ("/api", "marathon"), ("db", "cassandra")
TINY = ipaddress.IPv4Network("10.9.9.0/29")  # 6 usable addresses: .1 to .6


def test_candidate_is_sha1_of_name_dot_framework_in_the_range():
    digest = int.from_bytes(hashlib.sha1(b"/web.marathon").digest(), "big")
    assert candidate(WEB, V4) == 1 + digest % (2**24 - 2)
    assert allocate({WEB}, {}, V4) == {WEB: str(V4.network_address + candidate(WEB, V4))}
    assert allocate({WEB}, {}, V6) == {WEB: str(V6.network_address + 1 + digest % (2**64 - 1))}


def test_usable_addresses_skip_network_and_broadcast():
    assert usable_offsets(V4) == range(1, 2**24 - 1)  # 11.0.0.1 .. 11.255.255.254
    assert usable_offsets(V6) == range(1, 2**64)  # fd01:c::1 .. fd01:c::ffff:ffff:ffff:ffff
    assert usable_offsets(TINY) == range(1, 7)


def test_a_vip_keeps_its_ip_across_replays_and_restarts():
    first = allocate({WEB, API}, {}, V4)
    assert allocate({WEB, API}, {}, V4) == first  # replay from scratch
    assert allocate({WEB, API}, first, V4) == first  # restart with the published allocations
    # An IP handed out earlier by other rules (or by hand) is kept as long as the VIP lives.
    kept = {WEB: "11.1.2.3"}
    assert allocate({WEB, API}, kept, V4)[WEB] == "11.1.2.3"


def test_released_ips_are_gone_and_others_do_not_move():
    first = allocate({WEB, API, DB}, {}, V4)
    after = allocate({WEB, DB}, first, V4)
    assert after == {WEB: first[WEB], DB: first[DB]}


def test_forced_collisions_probe_linearly_and_wrap():
    names = [(f"/app{i}", "marathon") for i in range(6)]
    result = allocate(set(names), {}, TINY)
    assert sorted(result.values()) == [f"10.9.9.{i}" for i in range(1, 7)]  # all six, no collision
    # Placed in sorted order: each starts at its own candidate and probes upwards, wrapping.
    taken: set[int] = set()
    for name in sorted(names):
        offset = candidate(name, TINY)
        while offset in taken:
            offset = offset % 6 + 1
        taken.add(offset)
        assert result[name] == f"10.9.9.{offset}"


def test_a_full_range_leaves_the_newcomer_out_and_keeps_the_rest():
    names = {(f"/app{i}", "marathon") for i in range(6)}
    full = allocate(names, {}, TINY)
    assert allocate(names | {("/late", "marathon")}, full, TINY) == full


def test_previous_entries_that_no_longer_fit_are_reallocated():
    twin, twin2 = ("/twin", "marathon"), ("/twin2", "marathon")
    previous = {WEB: "11.0.0.0", API: "10.0.0.1", DB: "garbage", twin: "11.0.0.7", twin2: "11.0.0.7"}
    result = allocate(set(previous), previous, V4)
    assert result[WEB] != "11.0.0.0" and result[API] != "10.0.0.1"
    assert result[twin] == "11.0.0.7" and result[twin2] != "11.0.0.7"  # the first in sorted order keeps it
    assert len(set(result.values())) == len(result) == 5


def test_reserved_addresses_are_never_handed_out():
    wanted = {(f"/app{i}", "marathon") for i in range(5)}
    result = allocate(wanted, {("/app0", "marathon"): "10.9.9.1"}, TINY, reserved={"10.9.9.1", "10.9.9.2"})
    assert {"10.9.9.1", "10.9.9.2"}.isdisjoint(result.values())
    assert sorted(result.values()) == ["10.9.9.3", "10.9.9.4", "10.9.9.5", "10.9.9.6"]


names = st.tuples(st.sampled_from(["/web", "/api", "db", "/a/b", "broker", "x"]), st.sampled_from(["marathon", "kafka"]))


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.sets(names, max_size=8), min_size=1, max_size=6))
def test_any_history_of_wanted_sets_stays_collision_free_stable_and_deterministic(history):
    """Replay a sequence of wanted sets twice: identical results, never a shared IP, no moves."""
    runs = []
    for _ in range(2):
        allocations: dict = {}
        trace = []
        for wanted in history:
            new = allocate(wanted, allocations, TINY)
            assert set(new) == wanted or len(new) == 6  # everyone fits unless the range is full
            assert len(set(new.values())) == len(new)
            for name in wanted & allocations.keys() & new.keys():
                assert new[name] == allocations[name]  # a VIP that lives keeps its IP
            allocations = new
            trace.append(new)
        runs.append(trace)
    assert runs[0] == runs[1]


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.sets(names, max_size=8), min_size=1, max_size=6))
def test_placing_newcomers_next_to_kept_addresses_is_what_allocate_gives(history):
    """The incremental VipTable keeps the live names and `place`s only the new ones; after any
    history that must equal a whole `allocate` (a full range included)."""
    reserved = {"10.9.9.3"}
    allocations: dict = {}
    for wanted in history:
        expected = allocate(wanted, allocations, TINY, reserved)
        kept = {name: ip for name, ip in allocations.items() if name in wanted}
        taken = {offset_of(ip, TINY) for ip in kept.values()}
        placed = place(wanted - kept.keys(), taken, blocked_offsets(reserved, TINY), TINY)
        assert {**kept, **placed} == expected
        allocations = expected
