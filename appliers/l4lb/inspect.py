"""`wayfinder vips`: what the topic asks for next to what the kernel holds. Pure comparison."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from appliers.l4lb.addresses import is_canonical_ip
from appliers.l4lb.desired import desired_vips
from appliers.l4lb.model import PROTOCOLS, KernelVip, TableState, VipKey, schema_key
from schemas.l4lb import Vip


def compare(topic: Mapping[str, Vip], kernel: Mapping[str, TableState]) -> list[dict]:
    """One entry per VIP of the topic, and one per VIP only the kernel has.

    ``programmed`` is true when the kernel's slots are exactly what the topic's backends ask
    for (a VIP whose backends are all drained is programmed when the kernel has no element);
    ``kernel`` lists the backends the kernel holds, one per slot.
    """
    with _gc_paused():
        return _compare(topic, kernel)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the entries are built: they are ~40,000 fresh dicts
    and lists per 10,000 VIPs, none in a cycle, and the collections their allocations set off
    (each full one walking every object of the process) took a third of the comparison."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compare(topic: Mapping[str, Vip], kernel: Mapping[str, TableState]) -> list[dict]:
    held: dict[VipKey, KernelVip | None] = {}
    for state in kernel.values():
        held.update(state.kernel_vips())
    # Only the VIPs the kernel may hold are converted to kernel form (0.015 ms each, 0.15 s
    # for 10,000): one it cannot hold is programmed exactly when it is not programmable at all.
    converted = {k: v for k, v in topic.items() if (v.ip, v.protocol, v.port) in held or not _canonical(v)}
    desired, keys, _ = desired_vips(converted)
    entries: list[dict] = []
    append = entries.append
    for topic_key, vip in sorted(topic.items()):
        if topic_key in converted:
            key = (vip.ip, vip.protocol, vip.port)
            want, have = desired.get(key), held.get(key)
            slots = [{"ip": ip, "port": port} for ip, port in have.slots] if have else []
            programmed = have == want if want is not None else key not in held
        else:  # the kernel holds no such key: programmed exactly when it is not programmable
            slots, programmed = [], _refused(vip)
        append(
            {
                "protocol": vip.protocol,
                "ip": vip.ip,
                "port": vip.port,
                "name": vip.name,
                "framework": vip.framework,
                "dns": vip.dns,
                "backends": [{"ip": b.ip, "port": b.port, "weight": b.weight} for b in vip.backends],
                "kernel": slots,
                "programmed": programmed,
            }
        )
    for key, have in sorted(held.items()):
        if key not in keys:
            append(
                {
                    "protocol": key[1], "ip": key[0], "port": key[2], "name": None, "framework": None, "dns": None,
                    "backends": [], "kernel": [{"ip": ip, "port": port} for ip, port in (have.slots if have else ())],
                    "programmed": False, "unexpected": schema_key(key),
                }
            )
    return entries


def _canonical(vip: Vip) -> bool:
    """Written as the kernel side spells it: the raw key then finds it among the held VIPs."""
    return vip.protocol in PROTOCOLS and is_canonical_ip(vip.ip)


def _refused(vip: Vip) -> bool:
    """What `desired_vips` refuses outright (its ip is canonical here): never programmed."""
    return not 0 < vip.port < 65536


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
