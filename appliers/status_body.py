"""The bodies of the node status endpoint (appliers/status_server.py), apart from the server:
`wayfinder vips --node` decodes them, and must not import aiohttp and the reconcile loop to do
it (they cost it ~250 ms of its start-up)."""

from __future__ import annotations

import msgspec

from schemas.l4lb import Vip


class NodeVips(msgspec.Struct):
    """The body of ``GET /v1/vips``."""

    role: str
    ready: bool
    vips: dict[str, Vip]
