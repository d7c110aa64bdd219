"""The knobs of the DNS derivation, with Mesos-DNS's and DC/OS's defaults (reference §1.4, §1.7, §2.3).

``DnsConfig()`` is what a DC/OS cluster runs: domain ``mesos``, TTL 60, SRV weight 1, RFC 1123
labels, IP sources ``host`` then ``netinfo``, the dcos/1.13 merge of those sources (one IPv4
plus one IPv6), the legacy raw DiscoveryInfo-name duplicates, and TTL 5 in the dcos-dns zones
(``*.thisdcos.directory``, ``*.zk``). Upstream Mesos-DNS is
``DnsConfig(ip_sources=("netinfo", "mesos", "host"), ip_merge="first")``.

Every value is checked when the config is made, so a bad setting fails at start-up with the
field, the value and what is allowed, never halfway through a derivation.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.dns import MAX_TTL, canonical_name

IP_SOURCES = ("host", "netinfo", "mesos", "docker")
IP_MERGES = ("dcos", "first")
# Zones the dcos-dns side of the derivation writes; the Mesos-DNS domain must stay clear of them.
DCOS_ZONES = ("thisdcos.directory", "zk")


@dataclass(frozen=True)
class DnsConfig:
    """How records are named, which addresses they carry and how long they may be cached.

    - ``domain``: the Mesos-DNS domain (lower-cased; no trailing dot needed).
    - ``ttl``: TTL of the Mesos-DNS records (``<domain>``).
    - ``srv_weight``: weight of the Mesos-DNS SRV records (priority is always 0).
    - ``enforce_rfc952``: 24-character labels without leading digits instead of RFC 1123.
    - ``ip_sources``: where task addresses come from, in order: ``host`` (the agent),
      ``netinfo`` (NetworkInfo of the newest TASK_RUNNING status), ``mesos``/``docker``
      (the deprecated status labels).
    - ``ip_merge``: ``dcos`` concatenates the sources and keeps the first IPv4 and the first
      IPv6; ``first`` keeps every address of the first source that has any.
    - ``legacy_discovery_names``: also publish a task's names under its raw, unsanitised
      DiscoveryInfo name (what Mesos-DNS still does, e.g. ``server.temp.test.marathon.mesos``).
    - ``dcos_ttl``: TTL of the dcos-dns records (``*.thisdcos.directory``, ``zk-N.zk``).
    - ``mesos_copy``: include dcos-dns's copy of the Mesos-DNS zone (``X.mesos.thisdcos.directory``).
      The derivation's full view has it; the processor leaves it out (``PUBLISHED``), because
      every node answers those names as an alias of ``X.mesos`` (appliers/dns/routing.py) and
      the copy would double the topic and every node's memory.
    """

    domain: str = "mesos"
    ttl: int = 60
    srv_weight: int = 1
    enforce_rfc952: bool = False
    ip_sources: tuple[str, ...] = ("host", "netinfo")
    ip_merge: str = "dcos"
    legacy_discovery_names: bool = True
    dcos_ttl: int = 5
    mesos_copy: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", _domain(self.domain))
        object.__setattr__(self, "ip_sources", _ip_sources(self.ip_sources))
        _check_int("ttl", self.ttl, MAX_TTL)
        _check_int("dcos_ttl", self.dcos_ttl, MAX_TTL)
        _check_int("srv_weight", self.srv_weight, 65535)
        for name in ("enforce_rfc952", "legacy_discovery_names", "mesos_copy"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"DnsConfig.{name} must be true or false, not {getattr(self, name)!r}")
        if self.ip_merge not in IP_MERGES:
            raise ValueError(f"DnsConfig.ip_merge must be one of {', '.join(IP_MERGES)}, not {self.ip_merge!r}")


def _check_int(field: str, value: object, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"DnsConfig.{field} must be an integer from 0 to {maximum}, not {value!r}")


def _domain(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"DnsConfig.domain must be a domain name, not {value!r}")
    try:
        domain = canonical_name(value).rstrip(".")
    except ValueError as error:
        raise ValueError(f"DnsConfig.domain {value!r} is not a valid domain name: {error}") from None
    if not domain or "_" in domain:
        raise ValueError(f"DnsConfig.domain {value!r} is not a host name (letters, digits, '-', dots)")
    for zone in DCOS_ZONES:
        # The dcos-dns zones are told apart from the Mesos-DNS domain by suffix, so neither
        # may contain the other.
        if domain == zone or domain.endswith("." + zone) or zone.endswith("." + domain):
            raise ValueError(f"DnsConfig.domain {value!r} overlaps the dcos-dns zone {zone!r}")
    return domain


def _ip_sources(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise ValueError(f"DnsConfig.ip_sources must be a list of sources, not {value!r}")
    sources = tuple(value)
    unknown = [s for s in sources if s not in IP_SOURCES]
    if not sources or unknown:
        raise ValueError(
            f"DnsConfig.ip_sources must name at least one of {', '.join(IP_SOURCES)}; got {list(sources)!r}"
        )
    if len(set(sources)) != len(sources):
        raise ValueError(f"DnsConfig.ip_sources lists a source twice: {list(sources)!r}")
    return sources


PUBLISHED = DnsConfig(mesos_copy=False)  # what `wayfinder process` publishes by default
