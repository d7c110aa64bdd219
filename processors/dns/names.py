"""The pieces DNS names are built from, and the check that a built name is valid DNS. Pure.

- ``task_hash``: the first 5 characters of z-base-32 (the tv42/zbase32 alphabet Mesos-DNS
  uses) of the SHA-1 of the task id: the ``<h>`` of Mesos-DNS's canonical task name
  ``<t>-<h>-<s>``;
- ``agent_tail``: the ``<s>`` of it, the last ``-``-separated part of the agent id, lower case
  (agent ``...-S3`` -> ``s3``);
- ``valid_name``: the canonical form of a name we built, or why it cannot be a DNS name
  (a label over 63 characters, a name over 253, a character DNS zone text cannot carry).

The zone suffixes live here too, so every record family spells them the same way.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from schemas.dns import canonical_name

DCOS_ZONE = "dcos.thisdcos.directory"
MESOS_COPY_ZONE = "mesos.thisdcos.directory"  # dcos-dns's copy of the Mesos-DNS zone
ZK_ZONE = "zk"
# Record names in these zones carry the dcos-dns TTL; everything else is the Mesos-DNS domain.
DCOS_SUFFIXES = (".thisdcos.directory.", f".{ZK_ZONE}.")

_ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def task_hash(task_id: str) -> str:
    """zbase32(sha1(task id))[:5]: the first 25 bits of the digest, 5 bits per character."""
    bits = int.from_bytes(hashlib.sha1(task_id.encode()).digest()[:4], "big") >> 7
    return "".join(_ZBASE32[(bits >> shift) & 31] for shift in (20, 15, 10, 5, 0))


def agent_tail(agent_id: str) -> str:
    return agent_id.rsplit("-", 1)[-1].lower()


# What canonical_name accepts, as one pattern: cheap enough to run on every name we build.
_VALID = re.compile(r"(?:[a-z0-9_-]{1,63}\.)+")


@lru_cache(maxsize=1 << 16)
def valid_name(name: str) -> tuple[str | None, str | None]:
    """(canonical name, None) or (None, why it is not a DNS name). Cached: names repeat a lot.

    Names are built absolute; the fast path is one pattern match, and only a name that fails it
    goes through ``canonical_name`` (the zone's own rules) to say why.
    """
    lowered = name.lower()
    if len(lowered) <= 254 and _VALID.fullmatch(lowered):
        return lowered, None
    try:
        return canonical_name(name), None
    except ValueError as error:
        return None, str(error)


def is_dcos_name(name: str) -> bool:
    """True for names in the dcos-dns zones (``*.thisdcos.directory.``, ``*.zk.``)."""
    return name.endswith(DCOS_SUFFIXES)
