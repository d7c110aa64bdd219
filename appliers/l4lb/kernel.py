"""The one side-effecting seam of the L4 applier: nft transactions, read-back, routes, conntrack.

Everything that touches netlink runs on ONE worker thread. When `netns` is set that thread
enters the namespace with setns(2) before it opens any socket; a netlink socket stays in the
namespace it was opened in, and setns only moves the calling thread, so the caller (and the
rest of the process) stays where it is. Python 3.11 has no os.setns, hence ctypes.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import re
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from typing import TYPE_CHECKING, Callable, Iterable, TypeVar

import orjson

from appliers.l4lb.elements import NfTablesReader
from appliers.l4lb.libnftables import OUTPUT_JSON, OUTPUT_TERSE, Nft
from appliers.l4lb.model import FAMILIES, TABLE, TableState, table_state
from appliers.l4lb.plan import Flush, Plan

if TYPE_CHECKING:
    # Imported where the routes need it: the package imports all of itself (~140 ms), a cost
    # `wayfinder vips`, which only reads nftables, should not pay.
    from pyroute2 import IPRoute

CLONE_NEWNET = 0x40000000
# Routes we own carry this rtnetlink protocol number (unused in /etc/iproute2/rt_protos), so we
# list, replace and delete only ours and never touch a route someone else made.
ROUTE_PROTO = 87
BIG_TEXT = 64 * 1024  # a transaction this long is a rebuild (a one-VIP change is ~300 bytes)
T = TypeVar("T")


class NftError(RuntimeError):
    """nft refused a transaction; nothing of it was applied (transactions are atomic)."""


def _enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Kernel:
    """nftables, routes and conntrack of one network namespace (None: the process's own).

    Call from any thread; the work is serialised on the worker, and every wait is bounded.
    """

    def __init__(self, netns: str | None = None, timeout: float = 60.0) -> None:
        self.netns = netns
        self.timeout = timeout  # bounds every wait on the worker
        self._pool: ThreadPoolExecutor | None = None  # started on first use: no side effects here
        self._local = threading.local()

    # -- worker plumbing -------------------------------------------------------------------
    def _call(self, fn: Callable[..., T], *args) -> T:
        if self._pool is None:
            init = (lambda: _enter_netns(self.netns)) if self.netns else None  # type: ignore[arg-type]
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"l4lb-{self.netns or 'host'}", initializer=init)
        try:
            return self._pool.submit(fn, *args).result(timeout=self.timeout)
        except BrokenThreadPool as exc:  # setns failed (namespace gone?): start afresh next call
            self._pool = None
            raise OSError(f"l4lb worker for netns {self.netns!r} could not start: {exc}") from exc

    def _nft(self) -> Nft:
        if getattr(self._local, "nft", None) is None:
            self._local.nft = Nft()  # on the worker thread, after setns
        return self._local.nft

    def _ipr(self) -> IPRoute:
        if getattr(self._local, "ipr", None) is None:
            from pyroute2 import IPRoute

            self._local.ipr = IPRoute()  # on the worker thread, after setns
        return self._local.ipr

    def _elements_reader(self) -> NfTablesReader:
        if getattr(self._local, "elements", None) is None:
            self._local.elements = NfTablesReader()  # on the worker thread, after setns
        return self._local.elements

    def close(self) -> None:
        if self._pool is not None:
            def release() -> None:
                for name in ("nft", "ipr", "elements"):
                    obj = getattr(self._local, name, None)
                    if obj is not None:
                        obj.close()
            self._pool.submit(release).result(timeout=self.timeout)
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- nftables --------------------------------------------------------------------------
    def run(self, text: str) -> None:
        """Apply one transaction (the whole buffer commits or nothing does)."""

        def work() -> tuple[int, str, str]:
            result = self._nft().run(text)
            if len(text) > BIG_TEXT:
                self._renew()
            return result

        rc, _, err = self._call(work)
        if rc != 0:
            raise NftError(err.strip() or f"nft rc={rc}")

    def transact(self, plan: Plan) -> None:
        """Commit a plan: its nft text, as one transaction."""
        self.run(plan.text)

    def read(self) -> dict[str, TableState]:
        """Our tables as the kernel holds them now; a missing table reads as TableState()."""

        def work() -> list[tuple[str, TableState]]:
            try:
                return self._read_all()
            finally:
                self._renew()

        return dict(self._call(work))

    def read_elements(self) -> dict[str, TableState]:
        """The elements of our tables alone (no `blocks`), read over netlink in a fraction of
        `read`'s time (elements.py): enough to compare VIPs, not to plan a rebuild."""
        return dict(self._call(lambda: self._elements_reader().read()))

    def _renew(self) -> None:
        """A fresh context, on the worker. libnftables keeps the objects of the last command in
        its cache and frees them at the start of the next one: after a rebuild or a listing
        that is every element (150 ms at 30k VIPs), which would land on the next one-VIP
        change. Freeing them now puts the cost on the big operation that caused it."""
        nft = getattr(self._local, "nft", None)
        if nft is not None:
            nft.close()
        self._local.nft = Nft()

    def _read_all(self) -> list[tuple[str, TableState]]:
        nft = self._nft()
        states = []
        for family in FAMILIES:
            command = f"list table {family.name} {TABLE}"
            rc, terse, err = nft.run(command, OUTPUT_TERSE)
            if rc != 0 and "No such file or directory" in err:
                states.append((family.name, TableState()))
                continue
            rc2, listing, err2 = nft.run(command, OUTPUT_JSON)
            if rc or rc2:
                raise NftError((err or err2).strip())
            states.append((family.name, table_state(orjson.loads(listing), terse)))
        return states

    # -- routes for the node itself (no dummy device on this kernel: route via a device) ---
    def owned_routes(self) -> set[str]:
        def work() -> set[str]:
            out = set()
            for route in self._ipr().get_routes(family=socket.AF_UNSPEC, table=254, proto=ROUTE_PROTO):
                dst = route.get_attr("RTA_DST")
                if dst is not None:
                    out.add(str(ipaddress.ip_network(f"{dst}/{route['dst_len']}")))
            return out

        return self._call(work)

    def change_routes(self, add: Iterable[str], delete: Iterable[str], dev: str) -> None:
        def work() -> None:
            ipr = self._ipr()
            index = ipr.link_lookup(ifname=dev)
            if not index:
                raise OSError(f"route device {dev!r} not found")
            for dst in delete:
                ipr.route("del", dst=dst, table=254, proto=ROUTE_PROTO)
            for dst in add:
                ipr.route("replace", dst=dst, oif=index[0], table=254, proto=ROUTE_PROTO)

        self._call(work)

    # -- conntrack -------------------------------------------------------------------------
    def flush(self, flushes: Iterable[Flush]) -> int:
        """Delete the UDP conntrack entries of backends that left a VIP; returns how many.

        One `conntrack -L` per family finds them, one `conntrack -D` per (VIP, backend) deletes
        them: the CLI filters in the kernel (0.05 s), while pyroute2 decodes every entry in
        Python (seconds for tens of thousands), see reference 1.6.
        """
        wanted: dict[str, dict[tuple[str, int], frozenset]] = {}
        for f in flushes:
            wanted.setdefault("ipv6" if ":" in f.vip else "ipv4", {})[(f.vip, f.port)] = f.keep
        deleted = 0
        for family, targets in wanted.items():
            victims = set()
            for entry in self._conntrack("-L", "-f", family, "-p", "udp").splitlines():
                fields = [tok.split("=", 1) for tok in entry.split() if tok.startswith(("src=", "dst=", "sport=", "dport="))]
                if len(fields) < 8:
                    continue
                (_, _), (_, dst), (_, _), (_, dport), (_, rsrc), (_, _), (_, rsport), _ = fields[:8]
                dst, rsrc = str(ipaddress.ip_address(dst)), str(ipaddress.ip_address(rsrc))
                keep = targets.get((dst, int(dport)))
                if keep is not None and (rsrc, int(rsport)) not in keep:
                    victims.add((dst, dport, rsrc, rsport))
            for dst, dport, rsrc, rsport in sorted(victims):
                out = self._conntrack("-D", "-f", family, "-p", "udp", "--orig-dst", dst, "--dport", dport,
                                      "--reply-src", rsrc, "--reply-port-src", rsport, summary=True)
                match = re.search(r"(\d+) flow entries have been deleted", out)
                deleted += int(match.group(1)) if match else 0
        return deleted

    def _conntrack(self, *args: str, summary: bool = False) -> str:
        argv = ["conntrack", *args]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        # -D exits 1 when nothing matched (a race with expiry): fine; anything else is an error.
        if done.returncode not in (0, 1) or "flow entries" not in done.stderr:
            raise OSError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
        return done.stderr if summary else done.stdout
