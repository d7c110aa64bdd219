"""The one side-effecting seam of the overlay role: the VXLAN device, its addresses, neighbours,
FDB, routes, the table-42 rule (pyroute2) and the masquerade table (libnftables), read back and
changed, in the process's network namespace or a named one.

As in the l4lb seam, all of it runs on ONE worker thread that enters the namespace with
setns(2) before it opens a socket: a netlink socket (and a libnftables context) belongs to the
namespace of the thread that opened it, and the rest of the process stays where it is.

What is ours: the device `vtep1024` and everything on it (only PERMANENT neighbours and FDB
entries: the learned ones belong to the kernel), the routes with protocol ROUTE_PROTO in the
main table and table 42, the rules that look up table 42, and the table `inet wayfinder_overlay`.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from typing import Callable, Iterable, TypeVar

import orjson
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from appliers.l4lb.kernel import _enter_netns as enter_netns
from appliers.l4lb.libnftables import OUTPUT_JSON, Nft
from appliers.overlay import nat as nft
from appliers.overlay import netlink
from appliers.overlay import plan as ops
from appliers.overlay.index import Touched
from appliers.overlay.model import MAIN_TABLE, OVERLAY_TABLE, Nat, NodeState, Vtep
from schemas.overlay import VTEP_NAME

# Our routes carry this rtnetlink protocol number (l4lb's are 87), so the role lists, replaces
# and deletes only its own and never a route someone else made.
ROUTE_PROTO = 88
NUD_PERMANENT = 0x80
IFF_UP = 0x1
RT_SCOPE_LINK = 253
T = TypeVar("T")


class NftError(RuntimeError):
    """nft refused a transaction; nothing of it was applied."""


def _family(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_network(address, strict=False).version == 6 else socket.AF_INET


class OverlayKernel:
    """The overlay's kernel state of one network namespace (None: the process's own)."""

    def __init__(self, netns: str | None = None, timeout: float = 60.0) -> None:
        self.netns = netns
        self.timeout = timeout  # bounds every wait on the worker
        self._pool: ThreadPoolExecutor | None = None  # started on first use: no side effects here
        self._local = threading.local()
        # vtep1024's interface index as last found (worker thread only). A lookup costs about
        # 0.5 ms, as much as the rest of a peer's pass, so a partial read or an apply reuses it;
        # a full read finds it afresh, and any failure forgets it (the device may be another).
        self._vtep_ifindex: int | None = None

    def _call(self, fn: Callable[..., T], *args) -> T:
        if self._pool is None:
            init = (lambda: enter_netns(self.netns)) if self.netns else None  # type: ignore[arg-type]
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"overlay-{self.netns or 'host'}", initializer=init)
        try:
            return self._pool.submit(fn, *args).result(timeout=self.timeout)
        except BrokenThreadPool as exc:  # setns failed (namespace gone?): start afresh next call
            self._pool = None
            raise OSError(f"overlay worker for netns {self.netns!r} could not start: {exc}") from exc

    def _ipr(self) -> IPRoute:
        if getattr(self._local, "ipr", None) is None:
            self._local.ipr = IPRoute()  # on the worker thread, after setns
        return self._local.ipr

    def _rtnl(self) -> netlink.Rtnl:
        if getattr(self._local, "rtnl", None) is None:
            self._local.rtnl = netlink.Rtnl()
        return self._local.rtnl

    def _nft(self) -> Nft:
        if getattr(self._local, "nft", None) is None:
            self._local.nft = Nft()
        return self._local.nft

    def close(self) -> None:
        if self._pool is not None:
            def release() -> None:
                for name in ("nft", "ipr", "rtnl"):
                    obj = getattr(self._local, name, None)
                    if obj is not None:
                        obj.close()
                        setattr(self._local, name, None)
            self._pool.submit(release).result(timeout=self.timeout)
            self._vtep_ifindex = None
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- reading back ----------------------------------------------------------------------
    def read(self) -> NodeState:
        return self._call(self._read)

    def _read(self) -> NodeState:
        self._vtep_ifindex = None
        ipr = self._ipr()
        rules = self._read_rules(ipr)
        nat = self._read_nat()
        found = ipr.link_lookup(ifname=VTEP_NAME)
        if not found:
            return NodeState(rules=rules, nat=nat, routes=self._read_routes(None))
        index = self._vtep_ifindex = found[0]
        return NodeState(self._read_vtep(ipr, index), self._read_addresses(ipr, index),
                         self._read_neighbours(index), self._read_fdb(index), self._read_routes(index), rules, nat)

    def read_touched(self, touched: Touched) -> NodeState | None:
        """Only the touched entries, each read back by its key: neighbours by VTEP IP, FDB
        entries by MAC, main-table routes by an exact-match lookup. Not in it, because the
        kernel cannot answer for one of them alone: table-42 routes (RTM_GETROUTE looks up
        through the rules and ignores RTA_TABLE) and the masquerade's overlay-set elements
        (nft 1.0.6's `get element` misses elements of an interval set next to another one).
        None when the device is missing: a full read is needed."""
        return self._call(self._forgetting_on_failure, self._read_touched, touched)

    def _forgetting_on_failure(self, fn: Callable[..., T], *args) -> T:
        try:
            return fn(*args)
        except BaseException:
            self._vtep_ifindex = None
            raise

    def _read_touched(self, touched: Touched) -> NodeState | None:
        if self._vtep_ifindex is None:
            found = self._ipr().link_lookup(ifname=VTEP_NAME)
            if not found:
                return None
            self._vtep_ifindex = found[0]
        index = self._vtep_ifindex
        neighbours, fdb = sorted(touched.neighbours), sorted(touched.fdb)
        routes = sorted(key for key in touched.routes if key[0] == MAIN_TABLE)
        requests = [netlink.neighbour(netlink.RTM_GETNEIGH, netlink.WRITE, index, ip) for ip in neighbours]
        requests += [netlink.fdb(netlink.RTM_GETNEIGH, netlink.WRITE, index, mac) for mac in fdb]
        requests += [netlink.route(netlink.RTM_GETROUTE, netlink.WRITE, MAIN_TABLE, dst, 0,
                                   rtm_flags=netlink.RTM_F_FIB_MATCH) for _, dst in routes]
        replies = iter(self._rtnl().exchange(requests))
        state = NodeState()
        for ip, reply in zip(neighbours, replies):
            for _, payload in reply.messages:
                flags, ifindex, attrs = netlink.parse_neighbour(payload)
                if ifindex == index and flags & NUD_PERMANENT and attrs.get(netlink.NDA_LLADDR):
                    state.neighbours[ip] = attrs[netlink.NDA_LLADDR].hex(":")
        for mac, reply in zip(fdb, replies):
            for _, payload in reply.messages:
                flags, ifindex, attrs = netlink.parse_neighbour(payload)
                if ifindex == index and flags & NUD_PERMANENT and attrs.get(netlink.NDA_DST):
                    state.fdb[mac] = str(ipaddress.ip_address(attrs[netlink.NDA_DST]))
        for (table, dst), reply in zip(routes, replies):
            for _, payload in reply.messages:
                dst_len, found_table, proto, attrs = netlink.parse_route(payload)
                network = ipaddress.ip_network(dst)
                exact = (dst_len == network.prefixlen and found_table == table and proto == ROUTE_PROTO
                         and attrs.get(netlink.RTA_DST, network.network_address.packed) == network.network_address.packed)
                if not exact:
                    continue  # another route answers for it: ours is missing
                via = attrs.get(netlink.RTA_GATEWAY)
                on_device = attrs.get(netlink.RTA_OIF) == struct.pack("=i", index)
                state.routes[(table, dst)] = str(ipaddress.ip_address(via)) if via and on_device else ""
        return state

    @staticmethod
    def _read_vtep(ipr: IPRoute, index: int) -> Vtep | None:
        link = ipr.get_links(index)[0]
        info = link.get("IFLA_LINKINFO")
        data = info.get("IFLA_INFO_DATA") if info is not None else None
        if info is None or info.get("IFLA_INFO_KIND") != "vxlan" or data is None:
            # A device of our name that is no VXLAN: a tunnel that matches nothing, to recreate.
            return Vtep(local="", mac=str(link.get("IFLA_ADDRESS")), learning=False, vni=-1)
        return Vtep(local=str(data.get("IFLA_VXLAN_LOCAL") or data.get("IFLA_VXLAN_LOCAL6") or ""),
                    mac=str(link.get("IFLA_ADDRESS")).lower(), mtu=link.get("IFLA_MTU"),
                    up=bool(link["flags"] & IFF_UP), name=link.get("IFLA_IFNAME"), vni=data.get("IFLA_VXLAN_ID"),
                    port=data.get("IFLA_VXLAN_PORT"), learning=bool(data.get("IFLA_VXLAN_LEARNING")))

    @staticmethod
    def _read_addresses(ipr: IPRoute, index: int) -> frozenset[str]:
        return frozenset(str(ipaddress.ip_interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"))
                         for a in ipr.get_addr(index=index) if a["scope"] != RT_SCOPE_LINK)

    def _read_neighbours(self, index: int) -> dict[str, str]:
        out = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            for payload in self._rtnl().dump(netlink.dump_request(netlink.RTM_GETNEIGH, family)):
                state, ifindex, attrs = netlink.parse_neighbour(payload)
                if ifindex == index and state & NUD_PERMANENT and attrs.get(netlink.NDA_LLADDR) and netlink.NDA_DST in attrs:
                    out[str(ipaddress.ip_address(attrs[netlink.NDA_DST]))] = attrs[netlink.NDA_LLADDR].hex(":")
        return out

    def _read_fdb(self, index: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for payload in self._rtnl().dump(netlink.dump_request(netlink.RTM_GETNEIGH, netlink.AF_BRIDGE)):
            state, ifindex, attrs = netlink.parse_neighbour(payload)
            if ifindex == index and state & NUD_PERMANENT and attrs.get(netlink.NDA_DST) and attrs.get(netlink.NDA_LLADDR):
                out.setdefault(attrs[netlink.NDA_LLADDR].hex(":"), str(ipaddress.ip_address(attrs[netlink.NDA_DST])))
        return out

    def _read_routes(self, index: int | None) -> dict[tuple[int, str], str]:
        out = {}
        oif = struct.pack("=i", index) if index is not None else None
        for family, anywhere in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            for payload in self._rtnl().dump(netlink.dump_request(netlink.RTM_GETROUTE, family)):
                dst_len, table, proto, attrs = netlink.parse_route(payload)
                if table not in (MAIN_TABLE, OVERLAY_TABLE) or proto != ROUTE_PROTO:
                    continue
                via = attrs.get(netlink.RTA_GATEWAY)
                # A route of ours on another device (or none) is drift: an unknown gateway
                # makes the plan replace it.
                if oif is None or attrs.get(netlink.RTA_OIF) != oif or via is None:
                    via = None
                out[(table, _cidr(family, attrs.get(netlink.RTA_DST), dst_len, anywhere))] = \
                    (socket.inet_ntop(family, via) if family == socket.AF_INET else str(ipaddress.ip_address(via))) \
                    if via else ""
        return out

    @staticmethod
    def _read_rules(ipr: IPRoute) -> frozenset[tuple[str, int]]:
        out = set()
        for family, anywhere in ((socket.AF_INET, "0.0.0.0/0"), (socket.AF_INET6, "::/0")):
            for rule in ipr.get_rules(family=family):
                table = rule.get("FRA_TABLE") or rule["table"]
                if table != OVERLAY_TABLE:
                    continue
                src = rule.get("FRA_SRC")
                out.add((str(ipaddress.ip_network(f"{src}/{rule['src_len']}", strict=False)) if src else anywhere, table))
        return frozenset(out)

    def _read_nat(self) -> Nat | None:
        rc, listing, err = self._nft().run(f"list table {nft.FAMILY} {nft.TABLE}", OUTPUT_JSON)
        if rc != 0 and "No such file or directory" in err:
            return None
        if rc != 0:
            raise NftError(err.strip() or f"nft rc={rc}")
        return nft.read_nat(orjson.loads(listing))

    # -- changing ----------------------------------------------------------------------------
    def apply(self, operations: Iterable[ops.KernelOp]) -> None:
        """Apply the operations in order; the first failure raises (the loop then reads
        everything back and plans again)."""
        self._call(self._forgetting_on_failure, self._apply, list(operations))

    def _apply(self, operations: list[ops.KernelOp]) -> None:
        ipr = self._ipr()
        index = self._vtep_ifindex
        batch: list[ops.KernelOp] = []  # per-peer entries, sent together (netlink.py says why)
        for op in [*operations, None]:
            if isinstance(op, _PER_PEER):
                batch.append(op)
                continue
            if batch:
                if index is None:
                    index = self._vtep_ifindex = self._vtep_index(ipr, batch[0])
                self._per_peer(index, batch)
                batch = []
            if op is None:
                break
            if isinstance(op, ops.CreateVtep):
                index = self._vtep_ifindex = self._create_vtep(ipr, op.vtep)
                continue
            if isinstance(op, ops.DeleteVtep):
                found = ipr.link_lookup(ifname=op.name)
                if found:
                    ipr.link("del", index=found[0])
                index = self._vtep_ifindex = None
                continue
            if isinstance(op, ops.ReplaceNat):
                self._nft_run(nft.render_replace(op.nat))
                continue
            if isinstance(op, ops.DeleteNat):
                self._nft_run(nft.render_delete())
                continue
            if isinstance(op, (ops.AddNatOverlay, ops.DeleteNatOverlay)):
                self._nft_run(nft.render_overlay_elements("add" if isinstance(op, ops.AddNatOverlay) else "delete",
                                                          op.cidrs))
                continue
            if isinstance(op, (ops.AddRule, ops.DeleteRule)):
                self._rule(ipr, op)
                continue
            if index is None:
                index = self._vtep_ifindex = self._vtep_index(ipr, op)
            self._on_device(ipr, index, op)

    @staticmethod
    def _vtep_index(ipr: IPRoute, op: ops.KernelOp) -> int:
        found = ipr.link_lookup(ifname=VTEP_NAME)
        if not found:
            raise OSError(f"{VTEP_NAME} is missing: cannot {op}")
        return found[0]

    def _per_peer(self, index: int, batch: list[ops.KernelOp]) -> None:
        """Neighbours, FDB entries and routes in one exchange; the first refusal raises (the
        loop then reads everything back). A delete of what is gone already is done."""
        requests, tolerated = [], []
        for op in batch:
            if isinstance(op, ops.ReplaceNeighbour):
                requests.append(netlink.neighbour(netlink.RTM_NEWNEIGH, netlink.REPLACE, index, op.ip, op.mac))
            elif isinstance(op, ops.DeleteNeighbour):
                requests.append(netlink.neighbour(netlink.RTM_DELNEIGH, netlink.WRITE, index, op.ip))
            elif isinstance(op, ops.ReplaceFdb):
                requests.append(netlink.fdb(netlink.RTM_NEWNEIGH, netlink.REPLACE, index, op.mac, op.dst))
            elif isinstance(op, ops.DeleteFdb):
                requests.append(netlink.fdb(netlink.RTM_DELNEIGH, netlink.WRITE, index, op.mac, op.dst))
            elif isinstance(op, ops.ReplaceRoute):
                requests.append(netlink.route(netlink.RTM_NEWROUTE, netlink.REPLACE, op.table, op.dst, ROUTE_PROTO,
                                              index, op.via))
            else:
                requests.append(netlink.route(netlink.RTM_DELROUTE, netlink.WRITE, op.table, op.dst, ROUTE_PROTO))
            tolerated.append(_GONE.get(type(op)))
        for op, code, reply in zip(batch, tolerated, self._rtnl().exchange(requests)):
            if reply.error and reply.error != code:
                raise OSError(reply.error, f"{op}: {errno.errorcode.get(reply.error, reply.error)}")

    @staticmethod
    def _create_vtep(ipr: IPRoute, vtep: Vtep) -> int:
        ipr.link("add", ifname=vtep.name, kind="vxlan", vxlan_id=vtep.vni, vxlan_port=vtep.port,
                 vxlan_local=vtep.local, vxlan_learning=int(vtep.learning), address=vtep.mac, mtu=vtep.mtu)
        index = ipr.link_lookup(ifname=vtep.name)[0]
        if vtep.up:
            ipr.link("set", index=index, state="up")
        return index

    @staticmethod
    def _on_device(ipr: IPRoute, index: int, op: ops.KernelOp) -> None:
        if isinstance(op, ops.SetVtep):
            ipr.link("set", index=index, address=op.vtep.mac, mtu=op.vtep.mtu, state="up" if op.vtep.up else "down")
        elif isinstance(op, (ops.AddAddress, ops.DeleteAddress)):
            address = ipaddress.ip_interface(op.cidr)
            _tolerating(errno.EEXIST if isinstance(op, ops.AddAddress) else errno.EADDRNOTAVAIL,
                        ipr.addr, "add" if isinstance(op, ops.AddAddress) else "del", index=index,
                        address=str(address.ip), prefixlen=address.network.prefixlen, family=_family(op.cidr))
        else:
            raise TypeError(f"unknown operation {op!r}")

    @staticmethod
    def _rule(ipr: IPRoute, op: ops.AddRule | ops.DeleteRule) -> None:
        network = ipaddress.ip_network(op.src)
        source = {"src": str(network.network_address), "src_len": network.prefixlen} if network.prefixlen else {}
        if isinstance(op, ops.AddRule):
            _tolerating(errno.EEXIST, ipr.rule, "add", table=op.table, family=_family(op.src), **source)
        else:
            _tolerating(errno.ENOENT, ipr.rule, "del", table=op.table, family=_family(op.src), **source)

    def _nft_run(self, text: str) -> None:
        rc, _, err = self._nft().run(text)
        if rc != 0:
            raise NftError(err.strip() or f"nft rc={rc}")


_PER_PEER = (ops.ReplaceNeighbour, ops.DeleteNeighbour, ops.ReplaceFdb, ops.DeleteFdb, ops.ReplaceRoute, ops.DeleteRoute)
# The errno a delete gets when its entry is gone already (the read-back may be a moment old).
_GONE = {ops.DeleteNeighbour: errno.ENOENT, ops.DeleteFdb: errno.ENOENT, ops.DeleteRoute: errno.ESRCH}


def _cidr(family: int, packed: bytes | None, length: int, anywhere: str) -> str:
    """A route's destination as str(ip_network) writes it. The kernel keeps a route's host bits
    zero, so inet_ntop's text (a thousand times cheaper than ipaddress) is the same for IPv4;
    IPv6 text goes through ipaddress, whose zero compression is the one the plan compares."""
    if packed is None:
        return f"{anywhere}/{length}"
    if family == socket.AF_INET:
        return f"{socket.inet_ntop(family, packed)}/{length}"
    return str(ipaddress.ip_network((packed, length), strict=False))


def _tolerating(code: int, fn: Callable[..., object], *args, **kwargs) -> None:
    """Run a netlink call whose one failure `code` means it is done already (added before,
    gone already): the read-back it was planned from may be a moment old."""
    try:
        fn(*args, **kwargs)
    except NetlinkError as error:
        if error.code != code:
            raise
