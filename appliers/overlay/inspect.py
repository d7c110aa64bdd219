"""`wayfinder overlay`: this node's leases and peers as the topic says, next to what the kernel
holds. Pure comparison."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from appliers.overlay.model import MAIN_TABLE, NodeState, desired_state, own_leases, peers
from schemas.overlay import Lease


def _vtep(state: NodeState) -> dict | None:
    v = state.vtep
    return None if v is None else {"name": v.name, "vni": v.vni, "port": v.port, "local": v.local, "mac": v.mac,
                                   "mtu": v.mtu, "up": v.up, "addresses": sorted(state.addresses)}


def compare(leases: Iterable[Lease], agent_ip: str, kernel: NodeState) -> dict:
    """The node's own leases, its VTEP (wanted and held), one entry per peer with each of its
    kernel entries wanted and whether the kernel holds it so, and what the kernel holds that
    no lease asks for."""
    leases = list(leases)
    want = desired_state(leases, agent_ip)
    entries = []
    for agent_id, agent_leases in sorted(peers(leases, agent_ip).items()):
        first = agent_leases[0]
        wanted = {
            "neighbours": {ip: mac for ip, mac in want.neighbours.items() if mac == first.vtep_mac.lower()},
            "fdb": {mac: dst for mac, dst in want.fdb.items() if dst == first.agent_ip},
            "routes": {f"{dst} table {table}" if table != MAIN_TABLE else dst: via
                       for (table, dst), via in want.routes.items()
                       if via in (first.vtep_ip, first.vtep_ip6 and str(ipaddress.ip_address(first.vtep_ip6)))},
        }
        held = {
            "neighbours": {ip: kernel.neighbours.get(ip) for ip in wanted["neighbours"]},
            "fdb": {mac: kernel.fdb.get(mac) for mac in wanted["fdb"]},
            "routes": {text: kernel.routes.get(_route_key(text)) for text in wanted["routes"]},
        }
        entries.append({
            "agent_id": agent_id, "agent_ip": first.agent_ip, "vtep_ip": first.vtep_ip, "vtep_ip6": first.vtep_ip6,
            "vtep_mac": first.vtep_mac, "gone_since": first.gone_since,
            "subnets": {lease.overlay: lease.subnet for lease in agent_leases},
            "wanted": wanted, "kernel": held, "programmed": wanted == held and want.vtep is not None,
        })
    unexpected = {
        "neighbours": sorted(ip for ip in kernel.neighbours if ip not in want.neighbours),
        "fdb": sorted(mac for mac in kernel.fdb if mac not in want.fdb),
        "routes": sorted(f"{dst} table {table}" if table != MAIN_TABLE else dst
                         for table, dst in kernel.routes if (table, dst) not in want.routes),
        "rules": sorted(f"from {src} lookup {table}" for src, table in kernel.rules - want.rules),
        "addresses": sorted(kernel.addresses - want.addresses),
    }
    return {
        "agent_ip": agent_ip,
        "leases": [{"overlay": lease.overlay, "agent_id": lease.agent_id, "subnet": lease.subnet,
                    "mesos_subnet": lease.mesos_subnet, "docker_subnet": lease.docker_subnet, "mtu": lease.mtu}
                   for lease in own_leases(leases, agent_ip)],
        "vtep": {"wanted": _vtep(want), "kernel": _vtep(kernel),
                 "programmed": want.vtep == kernel.vtep and want.addresses <= kernel.addresses},
        "rules": {"wanted": sorted(f"from {s} lookup {t}" for s, t in want.rules),
                  "kernel": sorted(f"from {s} lookup {t}" for s, t in kernel.rules)},
        "masquerade": {"wanted": _nat(want), "kernel": _nat(kernel),
                       "programmed": want.nat == kernel.nat if want.nat else kernel.nat is None},
        "peers": entries,
        "unexpected": unexpected,
    }


def _route_key(text: str) -> tuple[int, str]:
    dst, _, table = text.partition(" table ")
    return (int(table), dst) if table else (MAIN_TABLE, dst)


def _nat(state: NodeState) -> dict | None:
    nat = state.nat
    return None if nat is None else {"sources": sorted(nat.sources), "overlay": sorted(nat.overlay), "intact": nat.intact}


def as_lines(report: dict) -> list[str]:
    """A readable table: the node, then one line per peer, a mark where the kernel differs."""
    def mark(ok: bool) -> str:
        return "ok  " if ok else "DIFF"

    vtep, lines = report["vtep"], []
    wanted, held = vtep["wanted"], vtep["kernel"]
    show = (lambda v: f"{v['name']} local {v['local']} {v['mac']} mtu {v['mtu']} {' '.join(v['addresses'])}"
            + ("" if v["up"] else " DOWN"))
    lines.append(f"{mark(vtep['programmed'])} node {report['agent_ip']}  topic: {show(wanted) if wanted else '-'}"
                 f"  kernel: {show(held) if held else '-'}")
    for lease in report["leases"]:
        lines.append(f"     lease {lease['overlay']} {lease['subnet']} (mesos {lease['mesos_subnet']}, "
                     f"docker {lease['docker_subnet']}, mtu {lease['mtu']})")
    rules = report["rules"]
    lines.append(f"{mark(set(rules['wanted']) <= set(rules['kernel']))} rules  topic: {', '.join(rules['wanted']) or '-'}"
                 f"  kernel: {', '.join(rules['kernel']) or '-'}")
    nat = report["masquerade"]
    lines.append(f"{mark(nat['programmed'])} masquerade from {', '.join((nat['wanted'] or {}).get('sources', [])) or '-'}"
                 f" unless to {', '.join((nat['wanted'] or {}).get('overlay', [])) or '-'}")
    for peer in report["peers"]:
        gone = " (agent gone)" if peer["gone_since"] else ""
        routes = " ".join(f"{dst} via {via}" for dst, via in peer["wanted"]["routes"].items())
        missing = [f"{kind} {key}" for kind in ("neighbours", "fdb", "routes")
                   for key, value in peer["wanted"][kind].items() if peer["kernel"][kind][key] != value]
        lines.append(f"{mark(peer['programmed'])} peer {peer['agent_id']} {peer['agent_ip']}{gone} vtep {peer['vtep_ip']} "
                     f"{peer['vtep_mac']}  {routes}" + (f"  kernel lacks: {', '.join(missing)}" if missing else ""))
    for kind, keys in report["unexpected"].items():
        for key in keys:
            lines.append(f"DIFF unexpected {kind[:-1] if kind != 'fdb' else 'fdb entry'} {key} (no lease asks for it)")
    return lines
