"""`wayfinder vips`: what the topic asks for next to what the kernel holds. Pure comparison."""

from __future__ import annotations

from collections.abc import Mapping

from appliers.l4lb.desired import desired_vips
from appliers.l4lb.model import KernelVip, TableState, VipKey, schema_key
from schemas.l4lb import Vip


def compare(topic: Mapping[str, Vip], kernel: Mapping[str, TableState]) -> list[dict]:
    """One entry per VIP of the topic, and one per VIP only the kernel has.

    ``programmed`` is true when the kernel's slots are exactly what the topic's backends ask
    for (a VIP whose backends are all drained is programmed when the kernel has no element);
    ``kernel`` lists the backends the kernel holds, one per slot.
    """
    desired, keys, _ = desired_vips(topic)
    held: dict[VipKey, KernelVip | None] = {}
    for state in kernel.values():
        held.update(state.kernel_vips())
    entries = []
    for topic_key, vip in sorted(topic.items()):
        key = (vip.ip, vip.protocol, vip.port)
        want, have = desired.get(key), held.get(key)
        entries.append(
            {
                "protocol": vip.protocol,
                "ip": vip.ip,
                "port": vip.port,
                "name": vip.name,
                "framework": vip.framework,
                "dns": vip.dns,
                "backends": [{"ip": b.ip, "port": b.port, "weight": b.weight} for b in vip.backends],
                "kernel": [{"ip": ip, "port": port} for ip, port in have.slots] if have else [],
                "programmed": have == want if want is not None else key not in held,
            }
        )
    for key, have in sorted(held.items()):
        if key not in keys:
            entries.append(
                {
                    "protocol": key[1], "ip": key[0], "port": key[2], "name": None, "framework": None, "dns": None,
                    "backends": [], "kernel": [{"ip": ip, "port": port} for ip, port in (have.slots if have else ())],
                    "programmed": False, "unexpected": schema_key(key),
                }
            )
    return entries


def as_lines(entries: list[dict]) -> list[str]:
    """A readable table: one line per VIP, a mark when the kernel differs from the topic."""
    lines = []
    for e in entries:
        mark = "ok " if e["programmed"] else "DIFF"
        name = f" {e['name']} ({e['dns']})" if e["name"] else ""
        backends = " ".join(f"{b['ip']}:{b['port']}" + ("(drained)" if b["weight"] == 0 else "") for b in e["backends"])
        kernel = " ".join(f"{b['ip']}:{b['port']}" for b in e["kernel"])
        lines.append(f"{mark} {e['protocol']} {e['ip']}:{e['port']}{name}  topic: {backends or '-'}  kernel: {kernel or '-'}")
    return lines
