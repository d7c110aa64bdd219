"""The recursion ACL: loopback and the node's networks by default, addresses as sockets give them."""

import pytest

from appliers.dns.acl import RecursionAcl


@pytest.mark.parametrize("host,allowed", [
    ("127.0.0.1", True),
    ("127.8.9.10", True),
    ("::1", True),
    ("10.0.4.5", True),
    ("::ffff:10.0.4.5", True),  # an IPv4 client on a dual-stack socket
    ("fd01:b::2", True),
    ("fe80::1%eth0", False),  # a scoped address outside the networks
    ("10.1.0.1", False),
    ("192.0.2.1", False),
    ("not-an-address", False),
])
def test_node_default(host, allowed):
    acl = RecursionAcl.for_node(["10.0.0.0/16", "fd01:b::/64"])
    assert acl.allows(host) is allowed
    assert acl.allows(host) is allowed  # the remembered answer is the same


def test_an_explicit_list_may_leave_loopback_out():
    acl = RecursionAcl(["10.0.0.0/8"])
    assert not acl.allows("127.0.0.1") and acl.allows("10.9.9.9")
