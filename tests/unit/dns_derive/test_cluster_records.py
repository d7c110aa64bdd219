"""Cluster, agent and framework names (reference §1.5 cluster table, §2.3 dcos and zk zones)."""

import pytest

from processors.dns.config import DnsConfig
from processors.dns.derive import agent_records, cluster_records, derive_records, framework_records
from schemas.mesos import Cluster, Master
from tests.unit.dns_derive.entities import AGENT, FRAMEWORK, replace, task


def names(found) -> dict[str, list[str]]:
    return {key: sorted(rdata) for key, rdata in found.contributions}


def master(ip: str, port: int = 5050) -> Master:
    return Master(hostname=ip, ip=ip, port=port)


M1, M2, M3 = master("10.0.0.1"), master("10.0.0.2"), master("10.0.0.3")


def test_leader_in_the_middle_of_three_masters():
    found = names(cluster_records(Cluster(leader=M2, masters=[M1, M2, M3]), DnsConfig()))
    assert found == {
        "leader.mesos./A": ["10.0.0.2"],
        "master.mesos./A": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        "master0.mesos./A": ["10.0.0.1"],
        "master1.mesos./A": ["10.0.0.2"],
        "master2.mesos./A": ["10.0.0.3"],
        "_leader._tcp.mesos./SRV": ["0 1 5050 leader.mesos."],
        "_leader._udp.mesos./SRV": ["0 1 5050 leader.mesos."],
        "master.dcos.thisdcos.directory./A": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        "leader.dcos.thisdcos.directory./A": ["10.0.0.2"],
        # round-robin over the masters: m1 m2 m3 m1 m2
        "zk-1.zk./A": ["10.0.0.1"],
        "zk-2.zk./A": ["10.0.0.2"],
        "zk-3.zk./A": ["10.0.0.3"],
        "zk-4.zk./A": ["10.0.0.1"],
        "zk-5.zk./A": ["10.0.0.2"],
    }


def test_leader_missing_from_the_list_gets_the_next_index():
    found = names(cluster_records(Cluster(leader=master("10.0.0.9", 5051), masters=[M1, M2]), DnsConfig()))
    assert [found[f"master{n}.mesos./A"] for n in range(3)] == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.9"]]
    assert found["_leader._tcp.mesos./SRV"] == ["0 1 5051 leader.mesos."]
    assert found["master.dcos.thisdcos.directory./A"] == ["10.0.0.1", "10.0.0.2"]  # the master list


def test_a_master_whose_ip_is_already_listed_gets_no_index():
    """Mesos-DNS skips masterN for a master whose address master.mesos already holds."""
    same_host = master("10.0.0.2", 5051)  # the leader's IP on another port
    found = names(cluster_records(Cluster(leader=M2, masters=[M1, same_host, M2, M3]), DnsConfig()))
    assert [found.get(f"master{n}.mesos./A") for n in range(4)] == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3"], None]


def test_single_master_fills_every_zk_name():
    found = names(cluster_records(Cluster(leader=M1, masters=[M1]), DnsConfig()))
    assert [found[f"zk-{n}.zk./A"] for n in range(1, 6)] == [["10.0.0.1"]] * 5


def test_ipv6_leader_and_master_without_ip():
    v6 = Master(hostname="fd00::1", ip="fd00::1")
    nameless = Master(hostname="master-3.example", ip=None)
    found = cluster_records(Cluster(leader=v6, masters=[v6, nameless]), DnsConfig())
    assert names(found)["leader.mesos./AAAA"] == ["fd00::1"]
    assert [(r.subject, r.value) for r in found.rejections] == [("cluster", "master-3.example")]


def test_agent_names():
    found = names(agent_records(replace(AGENT, port=5052), DnsConfig()))
    assert found == {"slave.mesos./A": ["10.0.0.3"], "_slave._tcp.mesos./SRV": ["0 1 5052 slave.mesos."]}
    hostname_only = agent_records(replace(AGENT, ip=None, hostname="agent.example"), DnsConfig())
    assert hostname_only.contributions == () and [r.value for r in hostname_only.rejections] == ["agent.example"]


def test_framework_names():
    assert names(framework_records(FRAMEWORK, DnsConfig())) == {
        "marathon.mesos./A": ["10.0.0.1"],
        "_framework._tcp.marathon.mesos./SRV": ["0 1 15101 marathon.mesos."],
    }
    # v1 operator API frameworks have no PID: no port, no SRV; inactive ones still count
    assert names(framework_records(replace(FRAMEWORK, port=None, active=False), DnsConfig())) == {"marathon.mesos./A": ["10.0.0.1"]}
    assert "marathon.prod.mesos./A" in names(framework_records(replace(FRAMEWORK, name="marathon.prod"), DnsConfig()))
    assert framework_records(FRAMEWORK, DnsConfig()).framework == "marathon"


def test_whole_table_shares_names_and_copies_the_mesos_zone():
    second = replace(FRAMEWORK, id="fw-2", port=15102)
    other_agent = replace(AGENT, id="a-S4", hostname="10.0.0.4", ip="10.0.0.4")
    web1, web2 = task(id="web.1", ips=("9.0.0.1",)), task(id="web.2", ips=("9.0.0.2",), agent=other_agent, framework=second)
    derived = derive_records(
        {"web.1": web1, "web.2": web2},
        {AGENT.id: AGENT, other_agent.id: other_agent},
        {FRAMEWORK.id: FRAMEWORK, second.id: second},
        {"cluster": Cluster(leader=M1, masters=[M1])},
    )
    records = derived.records
    web = records["web.marathon.mesos./A"]
    assert (web.rdata, web.tasks, web.framework, web.ttl) == (["10.0.0.3", "10.0.0.4"], ["web.1", "web.2"], "marathon", 60)
    assert records["_framework._tcp.marathon.mesos./SRV"].rdata == ["0 1 15101 marathon.mesos.", "0 1 15102 marathon.mesos."]
    assert records["slave.mesos./A"].rdata == ["10.0.0.3", "10.0.0.4"]
    copy = records["_framework._tcp.marathon.mesos.thisdcos.directory./SRV"]
    assert (copy.rdata, copy.ttl) == (["1 1 15101 marathon.mesos.thisdcos.directory.", "1 1 15102 marathon.mesos.thisdcos.directory."], 5)
    assert records["web.marathon.mesos.thisdcos.directory./A"].tasks == ["web.1", "web.2"]
    assert records["leader.mesos./A"].framework is None and records["leader.mesos./A"].tasks == []
    assert list(records) == sorted(records)


def test_what_the_node_makes_is_not_derived():
    """SOA, NS, ns1.mesos, thisnode, ready.spartan and the VIP names are per node (or the l4lb stage's)."""
    derived = derive_records(
        {"web.1": task(id="web.1", labels={"VIP_0": "/web:80"})},
        {AGENT.id: AGENT},
        {FRAMEWORK.id: FRAMEWORK},
        {"cluster": Cluster(leader=M1, masters=[M1])},
    )
    assert {key.rsplit("/", 1)[1] for key in derived.records} == {"A", "SRV"}
    for name in ("ns1.mesos.", "thisnode", "spartan.", "l4lb.thisdcos.directory."):
        assert not any(name in key for key in derived.records)


@pytest.mark.parametrize("domain", ["mesos", "cluster.example"])
def test_custom_domain_and_its_copy(domain):
    config = DnsConfig(domain=domain, ttl=30, srv_weight=7)
    derived = derive_records({}, {AGENT.id: AGENT}, {}, {}, config)
    assert derived.records[f"_slave._tcp.{domain}./SRV"].rdata == [f"0 7 5051 slave.{domain}."]
    assert derived.records[f"slave.{domain}./A"].ttl == 30
    # dcos-dns always copies the Mesos-DNS domain to mesos.thisdcos.directory
    assert derived.records["_slave._tcp.mesos.thisdcos.directory./SRV"].rdata == ["1 1 5051 slave.mesos.thisdcos.directory."]
