"""What this host's loopback offers, for tests that must skip when it lacks it."""

import socket


def has_ipv6_loopback() -> bool:
    """True when a socket can bind ::1 (some containers run without IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False
