"""Mesos tasks, agents, frameworks and the cluster -> DNS record sets (pure).

One function per record family, each listing the names it produces (notation of reference
§1.5: ``<fw>`` = domain_frag(framework name), ``<t>`` = label(task name, or DiscoveryInfo
name), ``<c>`` = ``<t>-<h>-<s>``, domain ``mesos``):

- ``task_records``: Mesos-DNS task names, dcos-dns task names;
- ``agent_records``: ``slave.mesos``, ``_slave._tcp.mesos``;
- ``framework_records``: ``<fw>.mesos``, ``_framework._tcp.<fw>.mesos``;
- ``cluster_records``: ``leader``, ``master``, ``masterN``, ``_leader._tcp|_udp`` (Mesos-DNS),
  ``master``/``leader.dcos.thisdcos.directory``, ``zk-1.zk`` .. ``zk-5.zk``.

Every Mesos-DNS record is also published in dcos-dns's copy of the zone, with ``.mesos``
replaced by ``.mesos.thisdcos.directory`` (SRV targets too) and SRV priority/weight 1/1; that
copy is made where record sets are built (sets.py), not contributed twice.
Not produced here, on purpose: SOA and NS (the node's zone makes them), ``ns1.mesos``,
``thisnode``, ``ready.spartan`` (per node) and the VIP names (the l4lb stage).

Each function returns an ``EntityRecords`` (collect.py): the record-set keys the entity
contributes to with their rdata, and a ``Rejection`` for every name or address it could not
publish (a label that sanitises to nothing, a label over 63 characters, an agent known only by
host name). A refused name never stops the entity's other names. ``derive_records`` folds every entity into the
whole table; ``table.DnsTable`` keeps the same fold up to date one entity at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from processors.dns.collect import Collector, EntityRecords, Rejection
from processors.dns.config import DnsConfig
from processors.dns.leases import OverlayLeases
from processors.dns.names import DCOS_ZONE, ZK_ZONE, agent_tail, task_hash, valid_name
from processors.dns.sets import copy_of, record_set
from processors.dns.sources import (
    Address,
    Keep,
    address,
    agent_addresses,
    container_ips,
    has_port_mapping,
    task_addresses,
)
from processors.naming import domain_frag, label
from schemas.dns import RecordSet
from schemas.mesos import Agent, Cluster, Framework, Task

ZK_NAMES = 5  # zk-1.zk .. zk-5.zk


@dataclass(frozen=True)
class Derived:
    """The whole DNS table (record sets by key, sorted) and everything refused on the way."""

    records: dict[str, RecordSet] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)


# -- tasks ----------------------------------------------------------------------------------


def task_records(task: Task, agent: Agent | None, framework: Framework | None, config: DnsConfig,
                 leases: OverlayLeases | None = None) -> EntityRecords:
    """Every name of one task: Mesos-DNS (``mesos_task_names``) and dcos-dns (``dcos_task_names``).

    Only a TASK_RUNNING task whose agent and framework are known has names; a task whose
    agent or framework is missing waits for it (no rejection: nothing is refused yet).
    With ``leases``, a container address inside a configured overlay but outside the agent's
    lease of it is left out of every name, and refused (leases.py).
    """
    if task.state != "TASK_RUNNING" or agent is None or framework is None:
        return EntityRecords()
    out = Collector(f"task {task.id}", config)
    hosts = agent_addresses(agent)
    if not hosts:
        out.reject(agent.hostname, f"agent {agent.id} has no IP address (host names are not resolved): no agent IP names")
    keep = leases.keeper(task.agent_id, out.reject) if leases is not None else None
    mesos_task_names(out, task, framework, hosts, config, keep)
    dcos_task_names(out, task, framework, hosts, keep)
    return out.result(framework.name, task.id)


def mesos_task_names(out: Collector, task: Task, framework: Framework, hosts: list[Address], config: DnsConfig,
                     keep: Keep | None = None) -> None:
    """Mesos-DNS task names (reference §1.5), for the sanitised name and the legacy raw one.

    - ``<t>.<fw>.mesos``, ``<c>.<fw>.mesos``: A/AAAA, the task addresses (``ip_sources``);
    - ``<t>.<fw>.slave.mesos``, ``<c>.<fw>.slave.mesos``: A/AAAA, the agent address;
    - every host port, ``_tcp`` and ``_udp``: ``_<t>._<proto>.<fw>.slave.mesos`` -> ``<c>.<fw>.slave.mesos``,
      and without DiscoveryInfo also ``_<t>._<proto>.<fw>.mesos`` -> the same target;
    - with DiscoveryInfo, every discovery port: ``_<t>._<proto>.<fw>.mesos`` -> ``<c>.<fw>.mesos``
      (no protocol: both), and ``_<port name>._<t>._<proto>.<fw>.mesos`` when the port has a name.

    With DiscoveryInfo the whole family runs first with the raw DiscoveryInfo name
    (``legacy_discovery_names``), then with the sanitised one, as Mesos-DNS does.

    Container addresses come in through the ``netinfo``, ``mesos`` and ``docker`` sources
    (with DC/OS's ``host, netinfo`` that is the AAAA of an IPv6 container, such as one on
    ``dcos6``); ``keep`` filters them as it filters the dcos-dns names.
    """
    rfc952 = config.enforce_rfc952
    fw = domain_frag(framework.name, rfc952)
    if not fw:
        out.reject(framework.name, "framework name has no DNS label left after sanitising: no Mesos-DNS names")
        return
    discovery = task.discovery if task.discovery is not None and task.discovery.name else None
    names = []
    if discovery is not None and config.legacy_discovery_names:
        _, why = valid_name(f"{discovery.name}.{fw}.{config.domain}.")
        if why is None:
            names.append(discovery.name)
        else:
            out.reject(discovery.name, f"the raw DiscoveryInfo name is not DNS ({why}): no legacy names")
    sanitised = label(discovery.name if discovery is not None else task.name, rfc952)
    if sanitised:
        names.append(sanitised)
    else:
        out.reject(discovery.name if discovery is not None else task.name, "task name has no DNS label left after sanitising")
    addresses = task_addresses(task, hosts, config, keep)
    suffix = f"{task_hash(task.id)}-{agent_tail(task.agent_id)}"
    for name in dict.fromkeys(names):
        _mesos_task_family(out, task, name, f"{name}-{suffix}", fw, addresses, hosts, discovery is not None, rfc952)


def _mesos_task_family(
    out: Collector,
    task: Task,
    name: str,
    canonical: str,
    fw: str,
    addresses: list[Address],
    hosts: list[Address],
    discovered: bool,
    rfc952: bool,
) -> None:
    out.mesos_addresses(f"{name}.{fw}", addresses)
    out.mesos_addresses(f"{canonical}.{fw}", addresses)
    out.mesos_addresses(f"{name}.{fw}.slave", hosts)
    out.mesos_addresses(f"{canonical}.{fw}.slave", hosts)
    host_ports = out.ports("host", (port for ports in task.port_ranges for port in range(ports.begin, ports.end + 1)))
    slave_target = f"{canonical}.{fw}.slave"
    for protocol in ("tcp", "udp"):
        out.mesos_srvs(f"_{name}._{protocol}.{fw}.slave", host_ports, slave_target)
        if not discovered:
            out.mesos_srvs(f"_{name}._{protocol}.{fw}", host_ports, slave_target)
    if not discovered:
        return
    for port in task.discovery.ports:
        protocol = label(port.protocol, rfc952)
        port_name = label(port.name or "", rfc952)
        number = out.ports("discovery", (port.number,))
        for proto in (protocol,) if protocol else ("tcp", "udp"):
            service = f"_{name}._{proto}.{fw}"
            out.mesos_srvs(service, number, f"{canonical}.{fw}")
            if port_name:
                out.mesos_srvs(f"_{port_name}.{service}", number, f"{canonical}.{fw}")


def dcos_task_names(out: Collector, task: Task, framework: Framework, hosts: list[Address],
                    keep: Keep | None = None) -> None:
    """dcos-dns task names (reference §2.3), ``<task>`` and ``<fw>`` each one RFC 1123 label:

    - ``<task>.<fw>.agentip.dcos.thisdcos.directory``: the agent address;
    - ``<task>.<fw>.containerip.dcos.thisdcos.directory``: every container address (none
      without NetworkInfo);
    - ``<task>.<fw>.autoip.dcos.thisdcos.directory``: the agent address if the task maps a
      host port, else the container addresses, else the agent address.

    ``<task>`` is the DiscoveryInfo name when the task has one, else the task name; so
    ``/mygroup/myapp`` gives ``myapp-mygroup`` and framework ``marathon.prod`` gives
    ``marathon-prod`` (Mesos-DNS keeps that dot).

    ``keep`` filters the container addresses (an overlay address outside the agent's lease);
    a task that reported container addresses keeps ``autoip`` on them even when every one is
    dropped, so ``autoip`` never falls back to the agent for a container on an overlay.
    """
    raw = task.discovery.name if task.discovery is not None and task.discovery.name is not None else task.name
    name, fw = label(raw), label(framework.name)
    if not name or not fw:
        out.reject(f"{raw} ({framework.name})", "task or framework name has no DNS label left: no dcos-dns names")
        return
    base = f"{name}.{fw}"
    reported = container_ips(task)
    containers = keep(reported) if keep is not None and reported else reported
    auto = hosts if has_port_mapping(task) or not reported else containers
    for kind, found in (("agentip", hosts), ("containerip", containers), ("autoip", auto)):
        out.addresses(f"{base}.{kind}.{DCOS_ZONE}.", found)


# -- agents, frameworks, cluster ------------------------------------------------------------


def agent_records(agent: Agent, config: DnsConfig) -> EntityRecords:
    """``slave.mesos`` A/AAAA (the agent address) and ``_slave._tcp.mesos`` SRV -> ``slave.mesos.:<port>``."""
    out = Collector(f"agent {agent.id}", config)
    hosts = agent_addresses(agent)
    if not hosts:
        out.reject(agent.hostname, "agent has no IP address (host names are not resolved): no slave names")
    out.mesos_addresses("slave", hosts)
    if hosts:
        out.mesos_srvs("_slave._tcp", out.ports("agent", (agent.port,)), "slave")
    return out.result()


def framework_records(framework: Framework, config: DnsConfig) -> EntityRecords:
    """``<fw>.mesos`` A/AAAA (the scheduler address) and, when its PID has a port,
    ``_framework._tcp.<fw>.mesos`` SRV -> ``<fw>.mesos.:<port>``.

    Frameworks are not filtered by ``active``, as in Mesos-DNS.
    """
    out = Collector(f"framework {framework.id}", config)
    fw = domain_frag(framework.name, config.enforce_rfc952)
    found = address(framework.ip)
    if not fw:
        out.reject(framework.name, "framework name has no DNS label left after sanitising")
    elif found is None:
        out.reject(framework.name, f"framework has no IP address (host {framework.hostname or ''!r} is not resolved)")
    else:
        out.mesos_addresses(fw, [found])
        if framework.port is not None:
            out.mesos_srvs(f"_framework._tcp.{fw}", out.ports("scheduler", (framework.port,)), fw)
    return out.result(framework.name)


def cluster_records(cluster: Cluster, config: DnsConfig) -> EntityRecords:
    """The masters (Mesos-DNS ``masterRecord``, dcos-dns ``master``/``leader``, the zk zone).

    - ``leader.mesos`` and ``master.mesos``: the leader; ``_leader._tcp|_udp.mesos`` ->
      ``leader.mesos.:<leader port>``;
    - ``master.mesos`` also every listed master; ``master0.mesos``, ``master1.mesos``, ... in
      list order (a master whose IP ``master.mesos`` already has gets no index; the leader, if
      not listed, gets the next one);
    - ``master.dcos.thisdcos.directory``: every listed master (the leader if none is listed);
      ``leader.dcos.thisdcos.directory``: the leader;
    - ``zk-1.zk`` .. ``zk-5.zk``: the masters round-robin (3 masters: m1 m2 m3 m1 m2).
    """
    out = Collector("cluster", config)
    leader = address(cluster.leader.ip)
    if leader is None:
        out.reject(cluster.leader.hostname, "the leading master has no IP address: no leader names")
    leader_at = (cluster.leader.hostname, cluster.leader.port)
    in_master: set[str] = set()
    if leader is not None:
        out.mesos_addresses("leader", [leader])
        out.mesos_addresses("master", [leader])
        in_master.add(leader[0])
        for protocol in ("tcp", "udp"):
            out.mesos_srvs(f"_leader._{protocol}", out.ports("leader", (cluster.leader.port,)), "leader")
    index, leader_indexed = 0, False
    masters: list[Address] = []
    for master in cluster.masters:
        found = address(master.ip)
        if found is None:
            out.reject(master.hostname, "master has no IP address (host names are not resolved)")
            continue
        if found not in masters:
            masters.append(found)
        is_leader = (master.hostname, master.port) == leader_at
        if not is_leader:
            if found[0] in in_master:
                continue  # Mesos-DNS: a master already in master.mesos gets no masterN
            in_master.add(found[0])
            out.mesos_addresses("master", [found])
        elif leader_indexed:
            continue
        out.mesos_addresses(f"master{index}", [found])
        index += 1
        leader_indexed = leader_indexed or is_leader
    if leader is not None and not leader_indexed:
        out.mesos_addresses(f"master{index}", [leader])
    if not masters and leader is not None:
        masters = [leader]
    out.addresses(f"master.{DCOS_ZONE}.", masters)
    if leader is not None:
        out.addresses(f"leader.{DCOS_ZONE}.", [leader])
    for n in range(ZK_NAMES if masters else 0):
        out.addresses(f"zk-{n + 1}.{ZK_ZONE}.", [masters[n % len(masters)]])
    return out.result()


# -- the whole table ------------------------------------------------------------------------


def entity_records(
    tasks: Mapping[str, Task],
    agents: Mapping[str, Agent],
    frameworks: Mapping[str, Framework],
    clusters: Mapping[str, Cluster],
    config: DnsConfig,
    leases: OverlayLeases | None = None,
) -> Iterable[EntityRecords]:
    """The records of every entity, tasks looking up their agent and framework by id."""
    for cluster in clusters.values():
        yield cluster_records(cluster, config)
    for agent in agents.values():
        yield agent_records(agent, config)
    for framework in frameworks.values():
        yield framework_records(framework, config)
    for task in tasks.values():
        yield task_records(task, agents.get(task.agent_id), frameworks.get(task.framework_id), config, leases)


def derive_records(
    tasks: Mapping[str, Task],
    agents: Mapping[str, Agent],
    frameworks: Mapping[str, Framework],
    clusters: Mapping[str, Cluster],
    config: DnsConfig | None = None,
    leases: OverlayLeases | None = None,
) -> Derived:
    """The whole DNS table for a snapshot of the Mesos tables (and the overlay leases, when
    given), sorted by key."""
    config = config or DnsConfig()
    rdata: dict[str, set[str]] = {}
    owners: dict[str, set[str]] = {}
    names: dict[str, set[str]] = {}
    rejections: list[Rejection] = []
    for found in entity_records(tasks, agents, frameworks, clusters, config, leases):
        rejections.extend(found.rejections)
        for key, values in found.contributions:
            rdata.setdefault(key, set()).update(values)
            if found.task is not None:
                owners.setdefault(key, set()).add(found.task)
            if found.framework is not None:
                names.setdefault(key, set()).add(found.framework)
    records: dict[str, RecordSet] = {}
    for key in rdata:
        value = records[key] = record_set(key, rdata[key], owners.get(key, ()), names.get(key, ()), config)
        copy = copy_of(value, config) if config.mesos_copy else None
        if copy is not None and copy[1] is not None:
            records[copy[0]] = copy[1]
    return Derived(dict(sorted(records.items())), sorted(rejections))
