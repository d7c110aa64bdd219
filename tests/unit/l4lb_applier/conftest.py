"""Conventions for these tests (kube-proxy style, one address range per role):

- VIPs: 11.0.0.0/24 and fd00:11::/64; ports 80 (tcp), 53 (udp), 443 (tcp).
- Backends: 10.200.2.0/24 and fd00:200::/64; backend ports 8080, 53, 8443.
- Weight 1 = in rotation, 0 = drained (no new connections, existing ones go on).
"""

from pathlib import Path

import pytest

from schemas.l4lb import Backend, Vip

GOLDEN = Path(__file__).parent / "golden"


def vip(key: str, *backends: tuple[str, int, int]) -> tuple[str, Vip]:
    """`vip("tcp/11.0.0.1/80", ("10.200.2.11", 8080, 1))` -> (key, Vip)."""
    proto, ip, port = key.split("/")
    return key, Vip(proto, ip, int(port), [Backend(b, p, w, f"task-{b}-{p}") for b, p, w in backends])


@pytest.fixture
def golden_vips() -> dict[str, Vip]:
    return dict([
        vip("tcp/11.0.0.1/80", ("10.200.2.12", 8080, 1), ("10.200.2.11", 8080, 1), ("10.200.2.13", 8080, 0)),
        vip("udp/11.0.0.1/53", ("10.200.2.13", 53, 1)),
        vip("tcp/11.0.0.2/443", ("10.200.2.11", 8443, 0), ("10.200.2.12", 8443, 0)),  # all drained
        vip("tcp/11.0.0.10/80", ("10.200.2.10", 8080, 4), ("10.200.2.9", 8080, 2)),  # weights 2:1
        vip("tcp/fd00:11::1/80", ("fd00:200::11", 8080, 1), ("fd00:200::12", 8080, 1)),
    ])


def golden(name: str, actual: str) -> str:
    """The golden text; WAYFINDER_UPDATE_GOLDEN=1 rewrites it from `actual` first."""
    import os

    path = GOLDEN / name
    if os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    return path.read_text()
