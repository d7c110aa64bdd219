"""The netlink element reader (appliers/l4lb/elements.py) against real nftables: it reads what
libnftables' listing reads, value for value, in a namespace of its own."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time

import pytest

from appliers.l4lb.applier import L4Applier
from appliers.l4lb.kernel import Kernel
from appliers.l4lb.model import TableState
from schemas.l4lb import Backend, Vip


@pytest.fixture
def kernel():
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root (a network namespace) and nftables")
    netns = f"wf-elements-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    kernel = Kernel(netns)
    try:
        yield kernel
    finally:
        kernel.close()
        subprocess.run(["ip", "netns", "delete", netns], check=False)


def _nft(kernel: Kernel, text: str) -> None:
    subprocess.run(["ip", "netns", "exec", kernel.netns, "nft", text], check=True)


def _elements_of(state: TableState) -> tuple:
    return state.exists, state.vip_ips, state.vips, state.endpoints


VIPS = {
    # weights 2, 0 (drained: no slot), 1 -> three slots, b1 twice
    "tcp/11.0.0.1/80": Vip("tcp", "11.0.0.1", 80, [Backend("10.200.0.1", 8080, 2, "t1"), Backend("10.200.0.2", 8080, 0, "t2"),
                                                    Backend("10.200.0.3", 8080, 1, "t3")]),
    "udp/11.0.0.1/53": Vip("udp", "11.0.0.1", 53, [Backend("10.200.0.9", 5353, 1, "t9")]),
    "tcp/fd00:11::1/443": Vip("tcp", "fd00:11::1", 443, [Backend("fd00:200::2", 8443, 1, "t6"),
                                                          Backend("fd00:200::1", 8443, 1, "t5")]),
}


def test_an_empty_namespace_has_no_tables(kernel):
    assert kernel.read_elements() == {"ip": TableState(), "ip6": TableState()}


def test_the_elements_are_what_nft_lists(kernel):
    applier = L4Applier(kernel)
    applier.set_desired(VIPS, complete=True)
    assert applier.sync().ok
    read = kernel.read_elements()

    web, dns, web6 = ("11.0.0.1", "tcp", 80), ("11.0.0.1", "udp", 53), ("fd00:11::1", "tcp", 443)
    assert read["ip"].vip_ips == {"11.0.0.1"}
    assert read["ip"].vips == {web: "k3", dns: "k1"}
    assert read["ip"].endpoints == {
        (web, 0): ("10.200.0.1", 8080), (web, 1): ("10.200.0.1", 8080), (web, 2): ("10.200.0.3", 8080),
        (dns, 0): ("10.200.0.9", 5353)}
    assert read["ip6"].vip_ips == {"fd00:11::1"}
    assert read["ip6"].vips == {web6: "k2"}
    assert read["ip6"].endpoints == {(web6, 0): ("fd00:200::1", 8443), (web6, 1): ("fd00:200::2", 8443)}
    assert read["ip"].blocks == {} and read["ip6"].blocks == {}  # elements only
    # Value for value what libnftables' listing gives.
    listed = kernel.read()
    assert {f: _elements_of(s) for f, s in read.items()} == {f: _elements_of(s) for f, s in listed.items()}

    # An element someone added by hand, with a comment (so not laid out like the others), and
    # a VIP put in a second slot set: read as they are.
    _nft(kernel, 'add element ip wayfinder k1 { 11.0.0.7 . tcp . 99 comment "by hand" }')
    _nft(kernel, "add element ip wayfinder k1 { 11.0.0.1 . tcp . 80 }")
    read = kernel.read_elements()
    assert read["ip"].vips == {web: "k1,k3", dns: "k1", ("11.0.0.7", "tcp", 99): "k1"}
    assert read["ip"].vips == kernel.read()["ip"].vips
    assert sorted(applier.programmed()) == ["tcp/fd00:11::1/443", "udp/11.0.0.1/53"]  # the others are malformed
    # Both are drift, which a resync repairs (the commented one too: the listing unwraps it).
    assert applier.resync().ok
    assert kernel.read_elements()["ip"].vips == {web: "k3", dns: "k1"}


def test_reads_during_changes_are_never_half_a_transaction(kernel):
    """A VIP moved between slot sets, transaction after transaction, while another thread reads:
    every read shows it whole (in one set, every slot present), never half old and half new."""

    def web(backends: int) -> dict[str, Vip]:
        many = {f"tcp/11.0.1.{i}/80": Vip("tcp", f"11.0.1.{i}", 80, [Backend("10.200.1.1", 8080, 1, "t")])
                for i in range(1, 200)}  # so that a read takes a while
        return {**many, "tcp/11.0.0.1/80": Vip("tcp", "11.0.0.1", 80, [
            Backend(f"10.200.0.{n}", 8080, 1, f"t{n}") for n in range(1, backends + 1)])}

    applier = L4Applier(kernel)
    applier.set_desired(web(1), complete=True)
    assert applier.sync().ok
    done = threading.Event()
    changes = []

    def change() -> None:
        try:
            for n in range(1, 121):  # bounded; each differs from the one before
                applier.set_desired(web(1 + n % 5), complete=True)
                changes.append(applier.sync().ok)
                time.sleep(0.003)  # a node in a burst of changes: a commit every few milliseconds
        finally:
            done.set()

    writer = threading.Thread(target=change)
    writer.start()
    reads = 0
    reader = Kernel(kernel.netns)  # its own worker thread and netlink socket
    try:
        while not done.is_set() or reads == 0:
            held = reader.read_elements()["ip"].kernel_vips()
            assert held[("11.0.0.1", "tcp", 80)] is not None, held[("11.0.0.1", "tcp", 80)]
            reads += 1
    finally:
        writer.join(60)
        reader.close()
    assert all(changes) and len(changes) == 120 and reads > 0
