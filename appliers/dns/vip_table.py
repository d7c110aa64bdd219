"""The `vips` table on a node that serves DNS without the l4lb role.

dcos-dns answers `*.l4lb.thisdcos.directory` on every node. A node that runs the l4lb role
names a VIP only once its own kernel holds it (appliers/node.py: the dns role waits for the
l4lb role's applied state). A node without that role has no kernel of its own to wait for:
its dns role names the VIPs the `vips` topic holds, read by this role on the same reconcile
loop as any other (caught up, past a ready processor mark, before the dns role is ready).
It applies nothing: what it exports is the table it follows.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime.reconcile import ReconcileLoop, Role, Scope
from schemas import codec
from schemas.l4lb import Vip


class VipTableRole(Role[Vip, None, None]):
    name = "vips"

    def decode(self, key: str, value: bytes) -> Vip:
        return codec.decode(value, Vip)  # a ValidationError is a ValueError: refused

    def observe(self, scope: Scope) -> None:
        return None

    def plan(self, desired: Mapping[str, Vip], actual: None, scope: Scope) -> None:
        return None  # nothing to apply: the table itself is the state other roles take


def vips_followed(loop: ReconcileLoop) -> Mapping[str, Vip]:
    """The VIPs of the `vips` topic, by topic key: this role's exported state."""
    return dict(loop.desired)
