"""Leases of a small cluster for the overlay role's tests: agents 1..n on 10.99.0.n, each with
its /24 of `dcos` (9.0.n-1.0/24 of 9.0.0.0/8) and, when asked, its /80 of `dcos6` (of
fd01:b::/64). ``legacy``: a lease as a processor that predates ``network`` wrote it."""

from __future__ import annotations

from schemas.overlay import Lease, lease_key


def agent_ip(n: int) -> str:
    return f"10.99.0.{n}"


def lease(n: int, overlay: str = "dcos", *, vtep_mac: str | None = None, gone_since: float | None = None,
          ipv6: bool = False, legacy: bool = False) -> Lease:
    vtep = dict(vtep_ip=f"44.128.0.{n}", vtep_prefix=20, vtep_mac=vtep_mac or f"70:b3:d5:80:00:{n:02x}")
    if ipv6:
        vtep.update(vtep_ip6=f"fd01:a::{n}", vtep_prefix6=64)
    if overlay == "dcos6":
        return Lease("dcos6", f"agent-{n}", agent_ip(n), f"fd01:b::{n}:0:0:0/80", f"fd01:b::{n}:0:0:0/81",
                     f"fd01:b::{n}:8000:0:0/81", gone_since=gone_since, network=None if legacy else "fd01:b::/64",
                     **vtep)
    return Lease(overlay, f"agent-{n}", agent_ip(n), f"9.0.{n - 1}.0/24", f"9.0.{n - 1}.0/25",
                 f"9.0.{n - 1}.128/25", gone_since=gone_since, network=None if legacy else "9.0.0.0/8", **vtep)


def table(*leases: Lease) -> dict[str, Lease]:
    """The lease table as the role's loop holds it: by topic key."""
    return {lease_key(x.overlay, x.agent_id): x for x in leases}
