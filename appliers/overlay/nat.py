"""The masquerade rule in nftables text, and the kernel's listing read back. Pure.

dcos-overlay's agent module masquerades traffic from an overlay subnet whose destination is
outside every overlay subnet (an ipset of everything with the overlay subnets as `nomatch`,
reference 4.2). Here: one table of Wayfinder's own, `inet wayfinder_overlay`, with interval sets
of this node's subnets (sources) and the overlay networks (overlay: ``9.0.0.0/8``; the agents'
subnets only for leases of an older processor, see model.overlay_entry), per family. The table
is small and changes only when this node's leases or the overlays do, never for a peer, so a
change replaces it whole in one transaction;
NAT bindings live in conntrack, so established flows keep theirs across the swap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from appliers.overlay.model import Nat

FAMILY, TABLE = "inet", "wayfinder_overlay"
_SETS = {  # set name -> (nft type, version, which side of Nat)
    "sources4": ("ipv4_addr", 4, "sources"), "overlay4": ("ipv4_addr", 4, "overlay"),
    "sources6": ("ipv6_addr", 6, "sources"), "overlay6": ("ipv6_addr", 6, "overlay"),
}
_RULES = [  # the rules' matches as read back: (protocol, field, op, right)
    (("ip", "saddr", "==", "@sources4"), ("ip", "daddr", "!=", "@overlay4")),
    (("ip6", "saddr", "==", "@sources6"), ("ip6", "daddr", "!=", "@overlay6")),
]
_CHAIN = {"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}


def _elements(cidrs: Iterable[str], version: int) -> str:
    chosen = sorted((ipaddress.ip_network(c, strict=False) for c in cidrs), key=lambda n: (n.version, n))
    return ", ".join(str(n) for n in chosen if n.version == version)


def render_replace(nat: Nat) -> str:
    """One transaction that leaves exactly `nat` in our table, whatever was there before."""
    sets = []
    for name, (kind, version, side) in _SETS.items():
        elements = _elements(getattr(nat, side), version)
        listed = f" elements = {{ {elements} }};" if elements else ""
        sets.append(f"  set {name} {{ type {kind}; flags interval;{listed} }}")
    return "\n".join([
        f"table {FAMILY} {TABLE} {{}}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
        *sets,
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        "    ip saddr @sources4 ip daddr != @overlay4 masquerade",
        "    ip6 saddr @sources6 ip6 daddr != @overlay6 masquerade",
        "  }",
        "}",
    ]) + "\n"


def render_delete() -> str:
    return f"table {FAMILY} {TABLE} {{}}\ndelete table {FAMILY} {TABLE}\n"


def _cidrs(element: object) -> list[str]:
    if isinstance(element, str):
        return [str(ipaddress.ip_network(element))]
    if isinstance(element, dict) and "prefix" in element:
        prefix = element["prefix"]
        return [str(ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}", strict=False))]
    if isinstance(element, dict) and "range" in element:
        low, high = (ipaddress.ip_address(a) for a in element["range"])
        return [str(n) for n in ipaddress.summarize_address_range(low, high)]
    raise ValueError(f"unexpected set element {element!r}")


def _rule_matches(expr: list[dict]) -> tuple | None:
    """A rule's matches, when it is match... masquerade and nothing else."""
    if not expr or expr[-1] != {"masquerade": None}:
        return None
    matches = []
    for item in expr[:-1]:
        match = item.get("match") if isinstance(item, dict) else None
        payload = match.get("left", {}).get("payload") if isinstance(match, dict) else None
        if not payload:
            return None
        matches.append((payload.get("protocol"), payload.get("field"), match.get("op"), match.get("right")))
    return tuple(matches)


def read_nat(listing: dict) -> Nat:
    """Our table's listing (`nft -j list table inet wayfinder_overlay`) as a Nat; ``intact``
    is False when anything but the sets' elements differs from what render_replace makes."""
    sides: dict[str, set[str]] = {"sources": set(), "overlay": set()}
    seen_sets, chains, rules = set(), [], []
    for item in listing.get("nftables", []):
        if "set" in item:
            found = item["set"]
            known = _SETS.get(found.get("name"))
            if known is None or found.get("type") != known[0]:
                chains.append(None)  # a foreign set: not ours as rendered
                continue
            seen_sets.add(found["name"])
            for element in found.get("elem", []):
                sides[known[2]].update(_cidrs(element))
        elif "chain" in item:
            chains.append({key: item["chain"].get(key) for key in (*_CHAIN, "name")})
        elif "rule" in item:
            rules.append(_rule_matches(item["rule"].get("expr", [])))
    intact = seen_sets == set(_SETS) and chains == [{**_CHAIN, "name": "postrouting"}] and rules == _RULES
    return Nat(frozenset(sides["sources"]), frozenset(sides["overlay"]), intact)


def _overlay_set(cidr: str) -> str:
    return "overlay6" if ipaddress.ip_network(cidr, strict=False).version == 6 else "overlay4"


def render_overlay_elements(verb: str, cidrs: Iterable[str]) -> str:
    """`add` or `delete` an older processor's per-agent subnets in the overlay sets, one
    transaction (a partial pass)."""
    by_set: dict[str, list[str]] = {}
    for cidr in cidrs:
        by_set.setdefault(_overlay_set(cidr), []).append(str(ipaddress.ip_network(cidr, strict=False)))
    return "".join(f"{verb} element {FAMILY} {TABLE} {name} {{ {', '.join(sorted(elements))} }}\n"
                   for name, elements in sorted(by_set.items()))

