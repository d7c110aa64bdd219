"""The answers of the Mesos-DNS HTTP API, computed from the node's DNS record table. Pure.

Tools written against Mesos-DNS (`:8123/v1/...`) read these JSON documents; each function
here builds one of them, with Mesos-DNS's field names and casing, from the record table the
node keeps (`<name>/<type>` -> `RecordSet`, names canonical: lower case, absolute):

    /v1/version            version_view()
    /v1/config             config_view(config, serial)
    /v1/hosts/{host}       hosts_view(table, host)
    /v1/services/{service} services_view(table, service)
    /v1/enumerate          enumerate_view(table, domain)
    /v1/axfr               axfr_view(table, config, serial)

Where Mesos-DNS keeps three maps (name -> set of "ip" or "target:port"), the table keeps whole
record sets; the views translate (an SRV rdata `0 1 31000 web.slave.mesos.` is Mesos-DNS's
`web.slave.mesos.:31000`). Mesos-DNS iterates Go maps, so its lists come in random order; ours
keep the table's (sorted, canonical) order, which a client cannot tell from a random one.

Deliberate differences, each because the table cannot or should not say more:
- hosts and services answer for every name the node serves (also `*.thisdcos.directory.`);
  Mesos-DNS only knows its own domain. Enumerate and axfr stay within the Mesos domain.
- enumerate lists an empty framework list as `[]` where Mesos-DNS writes `null`.
- enumerate: a record set shared by several tasks (`web.marathon.mesos.`) does not say which
  address came from which task; see `_attribute` for how values are assigned back.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.dns import RecordSet

Table = Mapping[str, RecordSet]

SERVICE = "Wayfinder (Mesos-DNS compatible API)"
URL = "https://github.com/mesosphere/mesos-dns"  # the API these answers follow
ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True)
class MesosDnsConfig:
    """What `/v1/config` reports and `/v1/axfr` uses, as plain values. The defaults are the
    ones coded in Mesos-DNS (reference/dcos-networking.md §1.7); the node passes its own
    (ports, listeners, resolvers, the SOA its zone serves)."""

    domain: str = "mesos"
    ttl: int = 60
    port: int = 53
    listener: str = "0.0.0.0"
    http_listener: str = "0.0.0.0"
    http_port: int = 8123
    resolvers: tuple[str, ...] = ("8.8.8.8",)
    zone_resolvers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ip_sources: tuple[str, ...] = ("netinfo", "mesos", "host")
    masters: tuple[str, ...] = ()
    zk: str = ""
    refresh_seconds: int = 60
    timeout: int = 5
    state_timeout_seconds: int = 300
    zk_detection_timeout: int = 30
    srv_record_default_weight: int = 1
    soa_mname: str = "ns1.mesos"
    soa_rname: str = "root.ns1.mesos"
    soa_refresh: int = 60
    soa_retry: int = 600
    soa_expire: int = 86400
    soa_minttl: int = 60
    dns_on: bool = True
    http_on: bool = True
    external_on: bool = True
    recurse_on: bool = True
    set_truncate_bit: bool = True
    enforce_rfc952: bool = False
    enumeration_on: bool = True
    mesos_https_on: bool = False

    @property
    def origin(self) -> str:
        """The domain as an absolute DNS name: "mesos" -> "mesos."."""
        return _absolute(self.domain)


def wayfinder_version() -> str:
    try:
        return importlib.metadata.version("wayfinder")
    except importlib.metadata.PackageNotFoundError:  # running from a checkout, not installed
        return "dev"


def version_view(version: str | None = None) -> dict:
    # Mesos-DNS writes a Go map, so its keys come sorted; so do ours.
    return {"Service": SERVICE, "URL": URL, "Version": version or wayfinder_version()}


def config_view(config: MesosDnsConfig, serial: int) -> dict:
    """Mesos-DNS's Config struct as it serialises it: Go field names, three of them (HttpPort,
    DnsOn, HttpOn) spelled the old way. SOA names are absolute and the Rname has its "@"
    turned into "." as Mesos-DNS does on load. The Mesos credentials field is left out: a
    secret has no business in an unauthenticated GET (and this node holds none)."""
    return {
        "RefreshSeconds": config.refresh_seconds,
        "Port": config.port,
        "Timeout": config.timeout,
        "StateTimeoutSeconds": config.state_timeout_seconds,
        "ZkDetectionTimeout": config.zk_detection_timeout,
        "HttpPort": config.http_port,
        "TTL": config.ttl,
        "SRVRecordDefaultWeight": config.srv_record_default_weight,
        "SOASerial": serial,
        "SOARefresh": config.soa_refresh,
        "SOARetry": config.soa_retry,
        "SOAExpire": config.soa_expire,
        "SOAMinttl": config.soa_minttl,
        "SOAMname": _mname(config),
        "SOARname": _rname(config),
        "Masters": list(config.masters),
        "ZoneResolvers": {zone: list(servers) for zone, servers in sorted(config.zone_resolvers.items())},
        "Resolvers": list(config.resolvers),
        "IPSources": list(config.ip_sources),
        "Zk": config.zk,
        "Domain": _domain(config),
        "File": "",
        "Listener": config.listener,
        "HTTPListener": config.http_listener,
        "RecurseOn": config.recurse_on,
        "DnsOn": config.dns_on,
        "HttpOn": config.http_on,
        "ExternalOn": config.external_on,
        "SetTruncateBit": config.set_truncate_bit,
        "EnforceRFC952": config.enforce_rfc952,
        "EnumerationOn": config.enumeration_on,
        "MesosHTTPSOn": config.mesos_https_on,
        "CACertFile": "",
        "IAMConfigFile": "",
    }


def query_name(path_parameter: str) -> str:
    """The table name a Mesos-DNS path parameter means: lower case, every ".*" removed
    (Mesos-DNS's wildcard cleaning), absolute."""
    return _absolute(path_parameter.lower().replace(".*", ""))


def hosts_view(table: Table, host: str) -> list[dict]:
    """`[{host, ip}]`, one per A then AAAA address of the name; `[{"host": "", "ip": ""}]` when
    it has none. `host` is the cleaned absolute name, whatever spelling was asked for."""
    name = query_name(host)
    found = [{"host": name, "ip": ip} for ip in _addresses(table, name)]
    return found or [{"host": "", "ip": ""}]


def services_view(table: Table, service: str) -> list[dict]:
    """`[{service, host, ip, port}]`, one per SRV target with the target's first A address,
    and one more with its first AAAA address when it has one (the ip is "" for a target with
    neither). `service` echoes the path parameter as given, as Mesos-DNS does; port is a
    string. One all-empty object when the name has no SRV records."""
    srv = table.get(f"{query_name(service)}/SRV")
    found = []
    for rdata in srv.rdata if srv else ():
        target, port = _srv_target_port(rdata)
        ips = [first for t in ADDRESS_TYPES if (first := _first(table, target, t))]
        for ip in ips or [""]:
            found.append({"service": service, "host": target, "ip": ip, "port": port})
    return found or [{"service": "", "host": "", "ip": "", "port": ""}]


def enumerate_view(table: Table, domain: str = "mesos", task_names: Mapping[str, str] | None = None) -> dict:
    """`{"frameworks": [{name, tasks: [{name, id, records: [{name, host, rtype}]}]}]}` for the
    record sets under `domain` that carry a framework. Record `host` is Mesos-DNS's value
    text: the address, or `target:port` for SRV.

    Frameworks come sorted by name, tasks by id, records by name, type and value. A framework
    whose only records are its own (`marathon.mesos.`) is listed with no tasks, as Mesos-DNS
    lists a framework without running tasks. Task names are not in the table: they come from
    `task_names` (task id -> Mesos task name) when the node has them, else from the task's
    records (`_inferred_task_name`)."""
    sets = [s for s in _under(table, _absolute(domain)) if s.framework is not None]
    per_task = _attribute(sets)
    frameworks: dict[str, dict[str, list[dict]]] = {}
    for s in sets:
        frameworks.setdefault(s.framework, {})
        for task in s.tasks:
            frameworks[s.framework].setdefault(task, [])
    for (framework, task), records in per_task.items():
        frameworks[framework][task].extend(records)
    names = task_names or {}
    # Key order as Mesos-DNS's structs declare their fields (a framework's tasks before its name).
    return {"frameworks": [
        {"tasks": [
            {"name": names.get(task) or _inferred_task_name(records, _absolute(domain)),
             "id": task,
             "records": sorted(records, key=lambda r: (r["name"], r["rtype"], r["host"]))}
            for task, records in sorted(tasks.items())],
         "name": framework}
        for framework, tasks in sorted(frameworks.items())]}


def axfr_view(table: Table, config: MesosDnsConfig, serial: int) -> dict:
    """Mesos-DNS's zone transfer document: every A, AAAA and SRV name under the domain with its
    values (SRV as `target:port`), and the SOA numbers a downstream copy needs."""
    records: dict[str, dict[str, list[str]]] = {"As": {}, "AAAAs": {}, "SRVs": {}}
    for s in _under(table, config.origin):
        if s.type == "SRV":
            records["SRVs"][s.name] = ["%s:%s" % _srv_target_port(rdata) for rdata in s.rdata]
        elif s.type in ADDRESS_TYPES:
            records[s.type + "s"][s.name] = list(s.rdata)
    return {
        "TTL": config.ttl,
        "Serial": serial,
        "RefreshSeconds": config.refresh_seconds,
        "Mname": _mname(config),
        "Rname": _rname(config),
        "Domain": _domain(config),
        "Records": {kind: dict(sorted(names.items())) for kind, names in records.items()},
    }


def _attribute(sets: list[RecordSet]) -> dict[tuple[str, str], list[dict]]:
    """(framework, task id) -> the task's enumerate records.

    A set with one task is all that task's. A set shared by several tasks gives each value to
    the tasks that evidently own it: an address that also appears in a set of that task alone
    (its canonical `<t>-<h>-<s>` name), an SRV whose target is a name of that task alone.
    A value with no such evidence goes to every task of the set rather than to none. Unlike
    Mesos-DNS, which lists a value only under the first task that produced it, a value two
    tasks really share (two tasks on one agent: the same `.slave` address) is under both."""
    sole_values: dict[str, set[tuple[str, str]]] = {}
    sole_names: dict[str, set[str]] = {}
    for s in sets:
        if len(s.tasks) == 1:
            sole_values.setdefault(s.tasks[0], set()).update((s.type, v) for v in s.rdata)
            sole_names.setdefault(s.tasks[0], set()).add(s.name)
    per_task: dict[tuple[str, str], list[dict]] = {}
    for s in sets:
        for rdata in s.rdata:
            host = "%s:%s" % _srv_target_port(rdata) if s.type == "SRV" else rdata
            owners = s.tasks
            if len(s.tasks) > 1:
                if s.type == "SRV":
                    target = _srv_target_port(rdata)[0]
                    evident = [t for t in s.tasks if target in sole_names.get(t, ())]
                else:
                    evident = [t for t in s.tasks if (s.type, rdata) in sole_values.get(t, ())]
                owners = evident or s.tasks
            for task in owners:
                per_task.setdefault((s.framework, task), []).append(
                    {"name": s.name, "host": host, "rtype": s.type})
    return per_task


def _inferred_task_name(records: list[dict], origin: str) -> str:
    """The task's label as its names show it: the first label of its shortest address name
    outside `slave.<domain>` (`web` of `web.marathon.mesos.`; the canonical
    `web-abcde-s1.marathon.mesos.` is longer). That is the sanitised Mesos-DNS label of the
    task name, not the raw Mesos task name, which only `task_names` can give."""
    slave = "slave." + origin
    names = sorted({r["name"] for r in records if r["rtype"] in ADDRESS_TYPES},
                   key=lambda n: (n.endswith("." + slave), len(n), n))
    return names[0].split(".", 1)[0] if names else ""


def _under(table: Table, origin: str) -> Iterable[RecordSet]:
    suffix = "." + origin
    for s in table.values():
        if s.name == origin or s.name.endswith(suffix):
            yield s


def _addresses(table: Table, name: str) -> list[str]:
    return [ip for t in ADDRESS_TYPES if (s := table.get(f"{name}/{t}")) for ip in s.rdata]


def _first(table: Table, name: str, type: str) -> str:
    s = table.get(f"{name}/{type}")
    return s.rdata[0] if s and s.rdata else ""


def _srv_target_port(rdata: str) -> tuple[str, str]:
    """`0 1 31000 web.slave.mesos.` -> ("web.slave.mesos.", "31000")."""
    _priority, _weight, port, target = rdata.split()
    return target, port


def _absolute(name: str) -> str:
    """Lower case with one trailing dot: the spelling of every name in the table."""
    return name.lower().rstrip(".") + "."


def _domain(config: MesosDnsConfig) -> str:
    return config.domain.lower().rstrip(".")


def _mname(config: MesosDnsConfig) -> str:
    return _absolute(config.soa_mname)


def _rname(config: MesosDnsConfig) -> str:
    return _absolute(config.soa_rname.replace("@", "."))
