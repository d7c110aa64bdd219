"""nftables text for the VIP table ("design B" of reference/kernel-dns-haproxy.md 1.3, with its
per-VIP verdict map replaced by membership sets). Pure.

One table per family, both named `wayfinder`:

- `prerouting` (forwarded traffic) and `output` (the node itself) first return unless the
  packet's daddr is in `vip_ips` (one lookup for all other traffic), then test
  daddr . l4proto . dport against the sets k1..kM in turn: a VIP with K slots is in `kK`, whose
  rule DNATs by `numgen random mod K` through the one `endpoints` map
  (VIP . proto . port . slot -> backend ip . port). `random`, not `inc`: a rule is shared by
  every VIP with K slots, and `inc` would share one counter among them.
  A VIP in no set (no backends, or all drained to weight 0) falls through untouched.
- `postrouting` masquerades connections we DNATed (original daddr in `vip_ips`). Backends on
  other hosts, and backends on the same bridge as the client, would otherwise answer the client
  directly, bypassing the conntrack entry that undoes the DNAT.

Why sets and not design B's `vips` verdict map (VIP -> goto modK): adding a goto element makes
the kernel validate the whole table at commit, walking every element of the map, so one change
cost 1.0 ms at 10k VIPs and 2.8 ms at 30k (kernel 6.18). Set elements carry no verdict: a
change costs 0.15-0.3 ms at any size. Packets pay at most K+1 lookups, and only the first
packet of a connection passes the nat hooks.

Sets and rules k1..kM are created only by a full rebuild. nft 1.0.6 fails to add a rule that
references `endpoints` once that map exists ("conflicting protocols specified: tcp vs. th"
while it re-reads the map's typeof from the kernel), so growing past M means a rebuild; M is at
least MIN_SETS and a power of two, so that is rare. The block bodies are written exactly as
`nft -t list table` prints them, so a terse read-back compares equal when nothing drifted.
"""

from __future__ import annotations

from typing import Iterable

from appliers.l4lb.model import TABLE, Family, KernelVip, Slot, ip_order, key_order

MIN_SETS = 8


def set_count(vips: Iterable[KernelVip]) -> int:
    """M for k1..kM: the smallest power of two >= every VIP's K, and >= MIN_SETS."""
    need = max((len(v.slots) for v in vips), default=0)
    m = MIN_SETS
    while m < need:
        m *= 2
    return m


def slot_rule(family: Family, k: int) -> str:
    f = family.name
    # The l4proto match is required: nft only accepts a `. port` DNAT map after one.
    return (
        f"{f} daddr . meta l4proto . th dport @k{k} meta l4proto {{ tcp, udp }} "
        f"dnat {f} to {f} daddr . meta l4proto . th dport . numgen random mod {k} map @endpoints"
    )


def base_blocks(family: Family, sets: int) -> dict[tuple[str, str], str]:
    """The fixed part of the table, as nft prints it (tabs are normalised away when compared)."""
    f = family.name
    blocks = {("set", "vip_ips"): f"type {family.addr_type}"}
    blocks.update({("set", f"k{k}"): f"type {family.addr_type} . inet_proto . inet_service" for k in range(1, sets + 1)})
    # typeof, because a plain `type ... . integer` is refused as variable-sized by nft 1.0.6;
    # `numgen random mod 1` only declares the slot field as a 32-bit integer.
    blocks[("map", "endpoints")] = f"typeof {f} daddr . meta l4proto . th dport . numgen random mod 1 : {f} daddr . th dport"
    dispatch = "\n".join([f"{f} daddr != @vip_ips return", *(slot_rule(family, k) for k in range(1, sets + 1))])
    blocks[("chain", "prerouting")] = f"type nat hook prerouting priority dstnat; policy accept;\n{dispatch}"
    # `dstnat` is only accepted on prerouting; -100 is the same priority for output.
    blocks[("chain", "output")] = f"type nat hook output priority -100; policy accept;\n{dispatch}"
    blocks[("chain", "postrouting")] = (
        f"type nat hook postrouting priority srcnat; policy accept;\nct status dnat ct original {f} daddr @vip_ips masquerade"
    )
    return blocks


def expected_blocks(family: Family, sets: int) -> dict[tuple[str, str], str]:
    return {name: " ".join(body.split()) for name, body in base_blocks(family, sets).items()}


def vip_element(v: KernelVip) -> str:
    return f"{v.ip} . {v.proto} . {v.port}"


def endpoint_key(v: KernelVip, slot: int) -> str:
    return f"{v.ip} . {v.proto} . {v.port} . {slot}"


def endpoint_element(v: KernelVip, slot: int, backend: Slot) -> str:
    return f"{endpoint_key(v, slot)} : {backend[0]} . {backend[1]}"


def _block(kind: str, name: str, body: str, elements: list[str]) -> list[str]:
    lines = [f"\t{kind} {name} {{", *(f"\t\t{line}" for line in body.split("\n"))]
    if elements:
        # One element per line: the golden tests stay readable, and nft accepts the layout.
        lines.append("\t\telements = { " + ",\n\t\t\t     ".join(elements) + " }")
    return [*lines, "\t}"]


def render_table(family: Family, vips: Iterable[KernelVip], sets: int) -> str:
    """The whole table with every element, in a deterministic order (VIPs by address, proto, port)."""
    live = sorted((v for v in vips if v.slots), key=lambda v: key_order(v.key))
    elements: dict[str, list[str]] = {"vip_ips": sorted({v.ip for v in live}, key=ip_order)}
    for v in live:
        elements.setdefault(f"k{len(v.slots)}", []).append(vip_element(v))
    elements["endpoints"] = [endpoint_element(v, i, b) for v in live for i, b in enumerate(v.slots)]
    lines = [f"table {family.name} {TABLE} {{"]
    for i, ((kind, name), body) in enumerate(base_blocks(family, sets).items()):
        if i:
            lines.append("")
        lines += _block(kind, name, body, elements.get(name, []))
    return "\n".join([*lines, "}", ""])


def render_rebuild(family: Family, vips: Iterable[KernelVip], sets: int) -> str:
    """Replace the family's table atomically: `add` makes the `delete` valid when it is absent."""
    return f"add table {family.name} {TABLE}\ndelete table {family.name} {TABLE}\n" + render_table(family, vips, sets)
