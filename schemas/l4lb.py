"""L4 virtual IPs: what every node programs into its kernel, derived from task VIP labels."""

from __future__ import annotations

from msgspec import Struct


class Backend(Struct, frozen=True, gc=False):
    """One endpoint behind a VIP. Weight 0 drains it: no new connections, existing ones go on."""

    ip: str
    port: int
    weight: int
    task_id: str
    agent_ip: str | None = None


class Vip(Struct, frozen=True, gc=False):
    """One VIP on one protocol and port. Key: ``<protocol>/<ip>/<port>`` (``tcp/11.0.0.5/80``).

    ``name`` is the name as the label wrote it (``/prod/web/frontend``) for named VIPs, whose
    ``ip`` the processor allocated; IP VIPs have no name and no DNS name. ``dns`` is
    ``<name>.<framework>.l4lb.thisdcos.directory``.
    """

    protocol: str
    ip: str
    port: int
    backends: list[Backend]
    name: str | None = None
    framework: str | None = None
    dns: str | None = None
