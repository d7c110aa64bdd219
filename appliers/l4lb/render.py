"""nftables text for the VIP table ("design B" of reference/kernel-dns-haproxy.md 1.3). Pure.

One table per family, both named `wayfinder`:

- `prerouting` (forwarded traffic) and `output` (the node itself) look the packet's
  daddr . l4proto . dport up in the verdict map `vips` and `goto modK`, K = the VIP's slot count.
  A VIP that is not in `vips` (no backends, or all drained to weight 0) falls through untouched.
- `modK` picks `numgen random mod K` and DNATs through the one `endpoints` map
  (VIP . proto . port . slot -> backend ip . port). `random`, not `inc`: a modK chain is shared
  by every VIP with K slots, and `inc` would share one counter among them.
- `postrouting` masquerades connections we DNATed (original daddr in `vip_ips`). Backends on
  other hosts, and backends on the same bridge as the client, would otherwise answer the client
  directly, bypassing the conntrack entry that undoes the DNAT. `vip_ips` exists because the
  `vips` verdict map cannot be looked up from postrouting: the kernel validates every chain a
  verdict map can reach against the hook, and DNAT is not allowed in postrouting.

Chains mod1..modM are created only by a full rebuild. nft 1.0.6 fails to add a rule that
references `endpoints` once that map exists ("conflicting protocols specified: tcp vs. th"
while it re-reads the map's typeof from the kernel), so growing past M means a rebuild; M is at
least MIN_CHAINS and a power of two, so that is rare. The block bodies are written exactly as
`nft -t list table` prints them, so a terse read-back compares equal when nothing drifted.
"""

from __future__ import annotations

from typing import Iterable

from appliers.l4lb.model import TABLE, Family, KernelVip, Slot, ip_order, key_order

MIN_CHAINS = 8


def chain_count(vips: Iterable[KernelVip]) -> int:
    """M for mod1..modM: the smallest power of two >= every VIP's K, and >= MIN_CHAINS."""
    need = max((len(v.slots) for v in vips), default=0)
    m = MIN_CHAINS
    while m < need:
        m *= 2
    return m


def mod_rule(family: Family, k: int) -> str:
    f = family.name
    # The l4proto match is required: nft only accepts a `. port` DNAT map after one.
    return f"meta l4proto {{ tcp, udp }} dnat {f} to {f} daddr . meta l4proto . th dport . numgen random mod {k} map @endpoints"


def base_blocks(family: Family) -> dict[tuple[str, str], str]:
    """The fixed part of the table, as nft prints it (tabs are normalised away when compared)."""
    f = family.name
    lookup = f"{f} daddr . meta l4proto . th dport vmap @vips"
    return {
        ("set", "vip_ips"): f"type {family.addr_type}",
        ("map", "vips"): f"type {family.addr_type} . inet_proto . inet_service : verdict",
        # typeof, because a plain `type ... . integer` is refused as variable-sized by nft 1.0.6;
        # `numgen random mod 1` only declares the slot field as a 32-bit integer.
        ("map", "endpoints"): f"typeof {f} daddr . meta l4proto . th dport . numgen random mod 1 : {f} daddr . th dport",
        ("chain", "prerouting"): f"type nat hook prerouting priority dstnat; policy accept;\n{lookup}",
        # `dstnat` is only accepted on prerouting; -100 is the same priority for output.
        ("chain", "output"): f"type nat hook output priority -100; policy accept;\n{lookup}",
        ("chain", "postrouting"): (
            f"type nat hook postrouting priority srcnat; policy accept;\nct status dnat ct original {f} daddr @vip_ips masquerade"
        ),
    }


def expected_blocks(family: Family, chains: int) -> dict[tuple[str, str], str]:
    blocks = base_blocks(family)
    blocks.update({("chain", f"mod{k}"): mod_rule(family, k) for k in range(1, chains + 1)})
    return {name: " ".join(body.split()) for name, body in blocks.items()}


def vip_element(v: KernelVip) -> str:
    return f"{v.ip} . {v.proto} . {v.port} : goto mod{len(v.slots)}"


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


def render_table(family: Family, vips: Iterable[KernelVip], chains: int) -> str:
    """The whole table with every element, in a deterministic order (VIPs by address, proto, port)."""
    live = sorted((v for v in vips if v.slots), key=lambda v: key_order(v.key))
    ips = sorted({v.ip for v in live}, key=ip_order)
    elements = {
        "vip_ips": ips,
        "vips": [vip_element(v) for v in live],
        "endpoints": [endpoint_element(v, i, b) for v in live for i, b in enumerate(v.slots)],
    }
    lines = [f"table {family.name} {TABLE} {{"]
    blocks = base_blocks(family)
    blocks.update({("chain", f"mod{k}"): mod_rule(family, k) for k in range(1, chains + 1)})
    for i, ((kind, name), body) in enumerate(blocks.items()):
        if i:
            lines.append("")
        lines += _block(kind, name, body, elements.get(name, []))
    return "\n".join([*lines, "}", ""])


def render_rebuild(family: Family, vips: Iterable[KernelVip], chains: int) -> str:
    """Replace the family's table atomically: `add` makes the `delete` valid when it is absent."""
    return f"add table {family.name} {TABLE}\ndelete table {family.name} {TABLE}\n" + render_table(family, vips, chains)
