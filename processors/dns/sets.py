"""Published record sets from what the entities contributed, and dcos-dns's copy of the Mesos-DNS zone. Pure.

dcos-dns serves every Mesos-DNS record again under ``mesos.thisdcos.directory`` (reference
§2.3, §2.5): ``X.mesos.`` becomes ``X.mesos.thisdcos.directory.``, SRV targets are renamed
the same way, SRV priority and weight become 1 and 1, and the TTL is the dcos-dns one. The
copy is a pure function of the Mesos-DNS record set, so it is made here, where a record set
is built, instead of being contributed twice by every entity: half the bookkeeping for the
same output. A name or target that only the longer copy pushes past 254 octets is left out
of the copy (``derive`` reports it when the entity is derived).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from processors.dns.config import DnsConfig
from processors.dns.names import MESOS_COPY_ZONE, is_dcos_name
from schemas.dns import MAX_NAME, RecordSet


@lru_cache(maxsize=8)
def _domain_suffix(domain: str) -> tuple[str, str]:
    return f"{domain}.", f".{domain}."


def copy_name(name: str, config: DnsConfig) -> str | None:
    """``X.<domain>.`` -> ``X.mesos.thisdcos.directory.``; None outside the domain or when too long."""
    suffix, dotted = _domain_suffix(config.domain)
    if not (name.endswith(dotted) or name == suffix):
        return None
    copied = f"{name[: -len(suffix)]}{MESOS_COPY_ZONE}."
    return copied if len(copied) <= MAX_NAME else None


def copy_rdata(rtype: str, rdata: str, config: DnsConfig) -> str | None:
    """The copy's rdata: addresses as they are, SRV ``1 1 <port> <renamed target>``."""
    if rtype != "SRV":
        return rdata
    _, _, port, target = rdata.split(" ")
    copied = copy_name(target, config)
    return None if copied is None else f"1 1 {port} {copied}"


def record_set(
    key: str, rdata: Iterable[str], tasks: Iterable[str], frameworks: Iterable[str], config: DnsConfig
) -> RecordSet:
    """The published value of one name and type, from everything contributed to it."""
    return sorted_record_set(key, sorted(rdata), sorted(tasks), min(frameworks, default=None), config)


def sorted_record_set(key: str, rdata: list[str], tasks: list[str], framework: str | None,
                      config: DnsConfig) -> RecordSet:
    """``record_set`` from rdata and task ids already sorted and distinct (the lists are kept)."""
    name, rtype = key.rsplit("/", 1)
    ttl = config.dcos_ttl if is_dcos_name(name) else config.ttl
    return RecordSet(name, rtype, ttl, rdata, framework, tasks)


def copy_of(value: RecordSet, config: DnsConfig) -> tuple[str, RecordSet | None] | None:
    """(key, record set) of the copy of a Mesos-DNS record set; None for names it does not copy.

    The record set is None when no rdata survives the renaming (every SRV target too long).
    """
    name = copy_name(value.name, config)
    if name is None:
        return None
    key = f"{name}/{value.type}"
    if value.type == "SRV":
        rdata = sorted(c for c in (copy_rdata("SRV", r, config) for r in value.rdata) if c is not None)
        if not rdata:
            return key, None
    else:
        rdata = value.rdata  # addresses are copied as they are (record sets are never mutated)
    return key, RecordSet(name, value.type, config.dcos_ttl, rdata, value.framework, value.tasks)
