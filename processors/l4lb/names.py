"""The DNS name of a named VIP: ``<name>.<framework>.l4lb.thisdcos.directory`` (reference §3.4).

Both parts go through ``domain_frag`` (processors/naming.py, the Mesos-DNS sanitiser every
name family shares): leading and inner ``/`` are dropped and dots separate labels.
"""

from __future__ import annotations

from processors.naming import domain_frag, label

__all__ = ["L4LB_ZONE", "domain_frag", "label", "vip_dns_name"]

L4LB_ZONE = "l4lb.thisdcos.directory"


def vip_dns_name(name: str, framework: str) -> str | None:
    """``<name>.<framework>.l4lb.thisdcos.directory``, or None if either side sanitises to nothing.

    A name such as ``///`` has no DNS form; its VIP still gets an IP and works by address.
    """
    name_part, framework_part = domain_frag(name), domain_frag(framework)
    if not name_part or not framework_part:
        return None
    return f"{name_part}.{framework_part}.{L4LB_ZONE}"
