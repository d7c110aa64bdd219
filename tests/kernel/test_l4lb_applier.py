"""The L4 applier against real nftables in the namespaces of conftest.py, with real traffic.

VIPs: 11.0.0.1 (tcp 80, udp 53) and fd00:11::1 (tcp 80); backends b1..b3 listen on 8080/5353.
Every test gives a fresh applier the complete desired state, so it prunes what earlier tests left.
"""

from __future__ import annotations

import socket

import pytest

from appliers.l4lb.applier import L4Applier
from appliers.l4lb.kernel import Kernel, NftError
from schemas.l4lb import Backend, Vip
from simulator.hosts import BACKENDS, TCP_PORT, UDP_PORT, sh, socket_in

VIP, VIP6 = "11.0.0.1", "fd00:11::1"
WEB, DNS, WEB6 = f"tcp/{VIP}/80", f"udp/{VIP}/53", f"tcp/{VIP6}/80"
NAMES = set(BACKENDS)


def vip(proto: str, ip: str, port: int, backend_port: int, **weights: int) -> Vip:
    """Backends b1..b3 at `backend_port`; weight 1 unless given (b2=0 drains b2); -1 leaves one out."""
    backends = []
    for name, ip4 in BACKENDS.items():
        weight = weights.get(name, 1)
        addr = ip4 if ":" not in ip else f"fd00:200::{ip4.rsplit('.', 1)[1]}"
        if weight >= 0:
            backends.append(Backend(addr, backend_port, weight, f"task-{name}"))
    return Vip(proto, ip, port, backends)


def web(**weights: int) -> Vip:
    return vip("tcp", VIP, 80, TCP_PORT, **weights)


@pytest.fixture
def applier(node):
    kernel = Kernel(node.hub)
    try:
        yield L4Applier(kernel, route_dev="br0", vip_ranges=("11.0.0.0/8", "fd00:11::/64"))
    finally:
        kernel.close()


def converge(applier: L4Applier, vips: dict[str, Vip], complete: bool = True):
    applier.set_desired(vips, complete)
    record = applier.sync()
    assert record is not None and record.ok, record
    return record


def ask(sock: socket.socket) -> str:
    sock.sendall(b"ping\n")
    return sock.recv(100).decode().strip()


def test_a_client_reaches_every_backend_masqueraded(node, applier):
    converge(applier, {WEB: web()})
    assert set(node.spread("client", VIP, 80, 60)) == NAMES
    # Masquerade: backends see the node, so replies come back through its conntrack entry.
    assert node.hello("client", VIP, 80)[1] == "10.200.2.1"
    # A container on the backends' own bridge only works thanks to that (hairpin): without the
    # masquerade rule the backend answers it directly and the handshake never completes.
    assert set(node.spread("container", VIP, 80, 30)) <= NAMES
    sh("nft", "flush chain ip wayfinder postrouting", ns=node.hub)
    with pytest.raises(OSError):
        node.connect("container", VIP, 80, timeout=0.5).close()
    applier.resync()
    assert set(node.spread("container", VIP, 80, 10)) <= NAMES


def test_e_the_node_itself_reaches_the_vip(node, applier):
    converge(applier, {WEB: web()})
    assert "11.0.0.0/8 dev br0 proto 87" in sh("ip", "route", ns=node.hub)
    assert node.hello("hub", VIP, 80)[0] in NAMES  # output hook, via the route we own


def test_b_drained_then_removed_backend_gets_no_new_connection_but_keeps_the_open_one(node, applier):
    converge(applier, {WEB: web()})
    with node.connect("client", VIP, 80) as held:
        first = held.makefile().readline().split()[0]
        converge(applier, {WEB: web(**{first: 0})})
        assert first not in node.spread("client", VIP, 80, 30)
        assert ask(held) == first
        converge(applier, {WEB: web(**{first: -1})})
        assert first not in node.spread("client", VIP, 80, 30)
        assert ask(held) == first


def test_c_resync_repairs_a_hand_deleted_element_and_a_flushed_chain(node, applier):
    converge(applier, {WEB: web()})
    before = sh("nft", "list", "table", "ip", "wayfinder", ns=node.hub)
    sh("nft", "delete element ip wayfinder k3 { 11.0.0.1 . tcp . 80 }", ns=node.hub)
    assert applier.sync() is None  # nothing changed on our side: the kept state is trusted
    record = applier.resync()
    assert record.ok and record.changed == 1 and record.rebuilt == ()
    assert set(node.spread("client", VIP, 80, 30)) <= NAMES
    with node.connect("client", VIP, 80) as held:
        first = held.makefile().readline().split()[0]
        sh("nft", "flush chain ip wayfinder prerouting", ns=node.hub)
        record = applier.resync()
        assert record.ok and record.rebuilt == ("ip",)
        assert ask(held) == first  # a full rebuild keeps established connections (conntrack)
    assert sh("nft", "list", "table", "ip", "wayfinder", ns=node.hub) == before
    assert set(node.spread("client", VIP, 80, 30)) <= NAMES


def test_d_restart_rebuilds_nothing_and_keeps_established_connections(node, applier):
    converge(applier, {WEB: web(), DNS: vip("udp", VIP, 53, UDP_PORT)})
    before = sh("nft", "list", "table", "ip", "wayfinder", ns=node.hub)
    with node.connect("client", VIP, 80) as held:
        first = held.makefile().readline().split()[0]
        kernel = Kernel(node.hub)
        try:
            restarted = L4Applier(kernel, route_dev="br0", vip_ranges=("11.0.0.0/8", "fd00:11::/64"))
            record = converge(restarted, {WEB: web(), DNS: vip("udp", VIP, 53, UDP_PORT)})
            assert record.text_bytes == 0 and record.rebuilt == ()
            assert sh("nft", "list", "table", "ip", "wayfinder", ns=node.hub) == before
            assert ask(held) == first
            programmed = restarted.programmed()
            assert sorted(programmed) == sorted([WEB, DNS])
            assert {b.task_id for b in programmed[WEB].backends} == {f"task-{n}" for n in NAMES}
        finally:
            kernel.close()


def test_f_udp_vip_drain_keeps_the_flow_and_removal_flushes_it(node, applier):
    converge(applier, {DNS: vip("udp", VIP, 53, UDP_PORT)})
    sock = socket_in(node.ns("client"), socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(2)
        sock.connect((VIP, 53))

        def name() -> str:
            sock.send(b"q")
            return sock.recv(100).decode().split()[0]

        first = name()
        assert name() == first  # conntrack pins one source port to one backend
        assert converge(applier, {DNS: vip("udp", VIP, 53, UDP_PORT, **{first: 0})}).flushed == 0
        assert name() == first  # drained: the existing flow goes on
        record = converge(applier, {DNS: vip("udp", VIP, 53, UDP_PORT, **{first: -1})})
        assert record.flushed >= 1
        assert name() != first  # removed: its conntrack entry is gone, the flow moves
    conntrack = sh("conntrack", "-L", "-p", "udp", "--orig-dst", VIP, ns=node.hub, check=False)
    assert f"src={BACKENDS[first]} " not in conntrack


def test_ipv6_vip(node, applier):
    converge(applier, {WEB6: vip("tcp", VIP6, 80, TCP_PORT)})
    assert applier.resync().text_bytes == 0  # the ip6 table reads back exactly as rendered
    assert set(node.spread("client", VIP6, 80, 45)) == NAMES
    assert node.hello("hub", VIP6, 80)[0] in NAMES
    converge(applier, {WEB: web()})
    assert "table ip6 wayfinder" not in sh("nft", "list", "tables", ns=node.hub)


def test_nothing_is_pruned_before_the_desired_state_is_complete(node, applier):
    converge(applier, {WEB: web()})
    fresh = L4Applier(applier.kernel)
    converge(fresh, {DNS: vip("udp", VIP, 53, UDP_PORT)}, complete=False)
    assert set(fresh.programmed()) == {WEB, DNS}
    assert node.hello("client", VIP, 80)[0] in NAMES
    converge(fresh, {DNS: vip("udp", VIP, 53, UDP_PORT)}, complete=True)
    assert set(fresh.programmed()) == {DNS}


class RefuseOnce(Kernel):
    refuse = True

    def run(self, text: str) -> None:
        if self.refuse:
            self.refuse = False
            raise NftError("refused for the test")
        super().run(text)


def test_failed_transaction_keeps_the_last_good_state(node, applier):
    converge(applier, {WEB: web()})
    kernel = RefuseOnce(node.hub)
    try:
        flaky = L4Applier(kernel)
        flaky.set_desired({WEB: web(b1=-1)}, complete=True)
        failed = flaky.sync()
        assert failed is not None and not failed.ok and "refused" in failed.error
        assert "b1" in node.spread("client", VIP, 80, 30)  # the old rules still serve
        assert flaky.dirty
        assert flaky.sync().ok  # the retry reads the kernel again and applies
        assert "b1" not in node.spread("client", VIP, 80, 30)
    finally:
        kernel.close()


def test_changes_are_planned_alone_and_a_resync_then_finds_nothing_to_do(node, applier):
    applier.vip_ranges = ("11.0.0.0/24", "fd00:11::/64")  # so 11.0.1.7 needs a host route
    converge(applier, {WEB: web(), DNS: vip("udp", VIP, 53, UDP_PORT)})
    extra = {f"tcp/11.0.{i}/80": Vip("tcp", f"11.0.{i}", 80, [Backend(BACKENDS["b1"], TCP_PORT, 1, "t")]) for i in ("0.5", "0.6", "1.7")}
    steps = [
        {WEB: web(b3=-1)},  # backend removed
        {WEB: web(b2=0, b3=-1)},  # weight to 0
        {WEB: web()},  # backends back
        extra,  # VIPs added
        {"tcp/11.0.0.5/80": None},  # VIP removed
        {"tcp/11.0.1.7/80": None},  # VIP outside the ranges removed: its host route goes
        {DNS: vip("udp", VIP, 53, UDP_PORT, b1=-1)},  # UDP backend removed
    ]
    for changes in steps:
        applier.update(changes, complete=True)
        record = applier.sync()
        assert record is not None and record.ok and record.partial and record.read_s == 0
        routes = sh("ip", "route", ns=node.hub)
        assert ("11.0.1.7 dev br0 proto 87" in routes) == ("tcp/11.0.1.7/80" in applier.programmed())
    assert set(node.spread("client", VIP, 80, 30)) == NAMES
    assert node.hello("client", "11.0.0.6", 80)[0] == "b1"
    resynced = applier.resync()
    assert resynced.ok and resynced.text_bytes == 0 and resynced.read_s > 0 and not resynced.partial
    # Nine slots are more than the sets k1..k8 offer: that change is a rebuild, then steady again.
    many = Vip("tcp", VIP, 80, [Backend(BACKENDS[n], TCP_PORT, w, f"task-{n}") for n, w in (("b1", 4), ("b2", 3), ("b3", 2))])
    applier.update({WEB: many})
    grown = applier.sync()
    assert grown.rebuilt == ("ip",) and not grown.partial
    assert applier.resync().text_bytes == 0
