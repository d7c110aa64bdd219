"""What one entity contributes to the DNS table, validated as it is collected. Pure.

A ``Collector`` gathers one entity's records: each name is checked to be a DNS name
(``names.valid_name``) before anything is added under it, each rdata is kept once per name,
and whatever cannot be published becomes a ``Rejection`` (the name, and why) instead of an
exception, so one bad name never costs the entity its other names. Mesos-DNS names are given
relative to the domain, and a name that only dcos-dns's longer ``mesos.thisdcos.directory``
copy would push past 254 characters is reported here (the copy itself is made with the
record set, sets.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from processors.dns.config import DnsConfig
from processors.dns.names import MESOS_COPY_ZONE, valid_name
from processors.dns.sets import copy_name
from schemas.dns import MAX_NAME
from processors.dns.sources import Address

# (record-set key "<name>/<type>" as schemas.dns.record_set_key spells it, its rdata)
Contribution = tuple[str, tuple[str, ...]]


@dataclass(frozen=True, order=True)
class Rejection:
    """A name or address of one entity that was not published, and why.

    ``subject`` names the entity (``task <id>``, ``agent <id>``, ``framework <id>``,
    ``cluster``), ``value`` what was refused (a name, a host name).
    """

    subject: str
    value: str
    why: str


@dataclass(frozen=True)
class EntityRecords:
    """What one entity adds to the DNS table."""

    contributions: tuple[Contribution, ...] = ()  # one per key, each rdata once
    rejections: tuple[Rejection, ...] = ()
    framework: str | None = None  # the framework name its records belong to
    task: str | None = None  # the task id, for task records


class Collector:
    """Validated contributions of one entity, each at most once, plus what was refused.

    ``addresses``/``srvs`` take absolute names; ``mesos_addresses``/``mesos_srvs`` take names
    relative to the Mesos-DNS domain (``web.marathon``) and check their copy's length too.
    """

    def __init__(self, subject: str, config: DnsConfig):
        self.subject = subject
        self.config = config
        self.mesos_suffix = f".{config.domain}."
        self.copy_growth = len(MESOS_COPY_ZONE) - len(config.domain)  # how much longer a copied name is
        self.out: dict[str, list[str]] = {}
        self.refused: dict[tuple[str, str], None] = {}

    def reject(self, value: str, why: str) -> None:
        self.refused[(value, why)] = None

    def _name(self, name: str) -> str | None:
        canonical, why = valid_name(name)
        if canonical is None:
            self.reject(name, f"not a DNS name: {why}")
        return canonical

    def _add(self, key: str, rdata: str) -> None:
        values = self.out.get(key)
        if values is None:
            self.out[key] = [rdata]
        elif rdata not in values:
            values.append(rdata)

    def addresses(self, name: str, found: list[Address]) -> None:
        """A/AAAA records of ``name`` (absolute), one per address."""
        if found and (canonical := self._name(name)) is not None:
            for ip, rtype in found:
                self._add(f"{canonical}/{rtype}", ip)

    def srvs(self, name: str, priority: int, weight: int, ports: list[int], target: str) -> None:
        """SRV records of ``name`` -> ``target`` (both absolute), one per port."""
        if ports and (canonical := self._name(name)) is not None and (target := self._name(target)) is not None:
            for port in ports:
                self._add(f"{canonical}/SRV", f"{priority} {weight} {port} {target}")

    def mesos_addresses(self, relative: str, found: list[Address]) -> None:
        name = relative + self.mesos_suffix
        self.addresses(name, found)
        if found:
            self._check_copy(name)

    def mesos_srvs(self, relative: str, ports: list[int], target: str) -> None:
        name, target = relative + self.mesos_suffix, target + self.mesos_suffix
        self.srvs(name, 0, self.config.srv_weight, ports, target)
        if ports:
            self._check_copy(name)
            self._check_copy(target)

    def _check_copy(self, name: str) -> None:
        """Report a valid Mesos-DNS name that the ``mesos.thisdcos.directory`` copy makes too long."""
        if len(name) + self.copy_growth <= MAX_NAME:
            return  # the common case, decided by length alone
        if len(name) <= MAX_NAME and valid_name(name)[0] is not None and copy_name(name, self.config) is None:
            copied = name[: -len(self.mesos_suffix)] + f".{MESOS_COPY_ZONE}."
            self.reject(copied, f"not a DNS name: longer than {MAX_NAME} characters (only {name} is published)")

    def ports(self, what: str, numbers: Iterable[int]) -> list[int]:
        """The numbers that are ports (0-65535); the others are refused."""
        kept = []
        for number in numbers:
            if 0 <= number <= 65535:
                kept.append(number)
            else:
                self.reject(f"{what} port {number}", "not a port number (0-65535)")
        return kept

    def result(self, framework: str | None = None, task: str | None = None) -> EntityRecords:
        rejections = tuple(sorted(Rejection(self.subject, value, why) for value, why in self.refused))
        contributions = tuple((key, tuple(values)) for key, values in self.out.items())
        return EntityRecords(contributions, rejections, framework, task)
