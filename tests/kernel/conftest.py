"""A throw-away node in network namespaces (simulator/hosts.py), and the overlay tests' agents
(overlay_cluster.py), for the kernel tests."""

from __future__ import annotations

import os
import secrets
import shutil

import pytest

from simulator.hosts import Hosts, build, teardown
from tests.kernel.overlay_cluster import new_cluster


def _needs_root_and_nft():
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root (network namespaces, nftables)")
    if shutil.which("nft") is None:
        pytest.skip("kernel tests need the nft command (Debian package nftables)")


@pytest.fixture(scope="module")
def node():
    _needs_root_and_nft()
    hosts = Hosts(prefix=f"wf-{secrets.token_hex(3)}-")
    try:
        build(hosts)
        yield hosts
    finally:
        teardown(hosts)


@pytest.fixture
def cluster(tmp_path):
    """The overlay tests' agents, each in its namespace (overlay_cluster.py), removed after."""
    built = new_cluster(tmp_path)
    try:
        yield built
    finally:
        built.teardown()
