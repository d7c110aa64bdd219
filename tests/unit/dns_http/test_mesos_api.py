"""The Mesos-DNS API documents built from the hand-written table in `cluster.py`."""

import orjson

from appliers.dns.mesos_api import (
    MesosDnsConfig,
    axfr_view,
    config_view,
    enumerate_view,
    hosts_view,
    services_view,
    version_view,
)
from schemas.dns import RecordSet
from tests.unit.dns_http.cluster import T1, T2, table

NO_HOST = [{"host": "", "ip": ""}]
NO_SERVICE = [{"service": "", "host": "", "ip": "", "port": ""}]


def test_version_names_wayfinder_with_go_sorted_keys():
    assert orjson.dumps(version_view("1.2.3")) == (
        b'{"Service":"Wayfinder (Mesos-DNS compatible API)",'
        b'"URL":"https://github.com/mesosphere/mesos-dns","Version":"1.2.3"}')


def test_version_defaults_to_the_installed_package():
    assert version_view()["Version"] == "0.1.0"  # pyproject.toml's version, installed in the venv


def test_hosts_lists_a_then_aaaa_whatever_the_spelling():
    expected = [{"host": "web.marathon.mesos.", "ip": "10.0.1.11"},
                {"host": "web.marathon.mesos.", "ip": "10.0.1.12"},
                {"host": "web.marathon.mesos.", "ip": "fd01:b::11"}]
    assert hosts_view(table(), "web.marathon.mesos") == expected
    assert hosts_view(table(), "Web.Marathon.MESOS.") == expected
    assert hosts_view(table(), "web.*.marathon.mesos") == expected  # Mesos-DNS drops ".*"


def test_hosts_answers_other_zones_of_the_node():
    assert hosts_view(table(), "web.marathon.autoip.dcos.thisdcos.directory") == [
        {"host": "web.marathon.autoip.dcos.thisdcos.directory.", "ip": "10.0.1.11"}]


def test_hosts_without_addresses_is_one_empty_record():
    assert hosts_view(table(), "nothing.marathon.mesos") == NO_HOST
    assert hosts_view(table(), "_web._tcp.marathon.mesos") == NO_HOST  # SRV only: no address


def test_services_gives_each_target_its_first_a_and_aaaa():
    assert services_view(table(), "_web._tcp.marathon.mesos") == [
        {"service": "_web._tcp.marathon.mesos", "host": "web-abcde-s1.marathon.slave.mesos.",
         "ip": "10.0.1.11", "port": "31000"},
        {"service": "_web._tcp.marathon.mesos", "host": "web-fghij-s2.marathon.slave.mesos.",
         "ip": "10.0.1.12", "port": "31002"},
    ]
    assert services_view(table(), "_HTTP._web._tcp.marathon.mesos.") == [
        {"service": "_HTTP._web._tcp.marathon.mesos.", "host": "web-abcde-s1.marathon.mesos.",
         "ip": "10.0.1.11", "port": "8080"},
        {"service": "_HTTP._web._tcp.marathon.mesos.", "host": "web-abcde-s1.marathon.mesos.",
         "ip": "fd01:b::11", "port": "8080"},
    ]


def test_services_target_without_address_keeps_an_empty_ip():
    dangling = table([RecordSet("_db._tcp.marathon.mesos.", "SRV", 60, ["0 1 9000 db-zzzzz-s9.marathon.slave.mesos."],
                                "marathon", ["db.9"])])
    assert services_view(dangling, "_db._tcp.marathon.mesos") == [
        {"service": "_db._tcp.marathon.mesos", "host": "db-zzzzz-s9.marathon.slave.mesos.", "ip": "", "port": "9000"}]


def test_services_without_srv_is_one_empty_record():
    assert services_view(table(), "_nothing._tcp.marathon.mesos") == NO_SERVICE
    assert services_view(table(), "web.marathon.mesos") == NO_SERVICE  # an A name is no service


def test_enumerate_groups_the_mesos_records_by_framework_and_task():
    assert enumerate_view(table()) == {"frameworks": [
        {"tasks": [], "name": "chronos"},
        {"tasks": [
            {"name": "web", "id": T1, "records": [
                {"name": "_http._web._tcp.marathon.mesos.", "host": "web-abcde-s1.marathon.mesos.:8080", "rtype": "SRV"},
                {"name": "_web._tcp.marathon.mesos.", "host": "web-abcde-s1.marathon.slave.mesos.:31000", "rtype": "SRV"},
                {"name": "web-abcde-s1.marathon.mesos.", "host": "10.0.1.11", "rtype": "A"},
                {"name": "web-abcde-s1.marathon.mesos.", "host": "fd01:b::11", "rtype": "AAAA"},
                {"name": "web-abcde-s1.marathon.slave.mesos.", "host": "10.0.1.11", "rtype": "A"},
                {"name": "web.marathon.mesos.", "host": "10.0.1.11", "rtype": "A"},
                {"name": "web.marathon.mesos.", "host": "fd01:b::11", "rtype": "AAAA"},
                {"name": "web.marathon.slave.mesos.", "host": "10.0.1.11", "rtype": "A"},
            ]},
            {"name": "web", "id": T2, "records": [
                {"name": "_web._tcp.marathon.mesos.", "host": "web-fghij-s2.marathon.slave.mesos.:31002", "rtype": "SRV"},
                {"name": "web-fghij-s2.marathon.mesos.", "host": "10.0.1.12", "rtype": "A"},
                {"name": "web-fghij-s2.marathon.slave.mesos.", "host": "10.0.1.12", "rtype": "A"},
                {"name": "web.marathon.mesos.", "host": "10.0.1.12", "rtype": "A"},
                {"name": "web.marathon.slave.mesos.", "host": "10.0.1.12", "rtype": "A"},
            ]},
        ], "name": "marathon"},
    ]}


def test_enumerate_keys_in_mesos_dns_order():
    view = enumerate_view(table())
    marathon = view["frameworks"][1]
    assert list(marathon) == ["tasks", "name"]
    assert list(marathon["tasks"][0]) == ["name", "id", "records"]
    assert list(marathon["tasks"][0]["records"][0]) == ["name", "host", "rtype"]


def test_enumerate_takes_task_names_from_the_node_when_given():
    view = enumerate_view(table(), task_names={T2: "web"} | {T1: "web.prod"})
    assert [(t["id"], t["name"]) for t in view["frameworks"][1]["tasks"]] == [(T1, "web.prod"), (T2, "web")]


def test_enumerate_shared_value_without_an_owner_goes_to_every_task():
    # Two tasks behind one address (no canonical names to tell them apart): both list it.
    shared = table([RecordSet("db.marathon.mesos.", "A", 60, ["10.0.1.20"], "marathon", ["db.1", "db.2"])])
    assert enumerate_view(shared) == {"frameworks": [{"tasks": [
        {"name": "db", "id": "db.1", "records": [{"name": "db.marathon.mesos.", "host": "10.0.1.20", "rtype": "A"}]},
        {"name": "db", "id": "db.2", "records": [{"name": "db.marathon.mesos.", "host": "10.0.1.20", "rtype": "A"}]},
    ], "name": "marathon"}]}


def test_enumerate_follows_the_configured_domain():
    other = table([RecordSet("web.marathon.dc1.", "A", 60, ["10.0.1.11"], "marathon", [T1])] + [
        RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.12"], "marathon", [T2])])
    assert enumerate_view(other, "DC1.") == {"frameworks": [{"tasks": [
        {"name": "web", "id": T1, "records": [{"name": "web.marathon.dc1.", "host": "10.0.1.11", "rtype": "A"}]},
    ], "name": "marathon"}]}


def test_enumerate_of_an_empty_table():
    assert enumerate_view({}) == {"frameworks": []}


def test_axfr_transfers_the_mesos_domain_only():
    view = axfr_view(table(), MesosDnsConfig(), serial=1764150000)
    assert view == {
        "TTL": 60,
        "Serial": 1764150000,
        "RefreshSeconds": 60,
        "Mname": "ns1.mesos.",
        "Rname": "root.ns1.mesos.",
        "Domain": "mesos",
        "Records": {
            "As": {
                "chronos.mesos.": ["10.0.0.3"],
                "leader.mesos.": ["10.0.0.1"],
                "marathon.mesos.": ["10.0.0.2"],
                "web-abcde-s1.marathon.mesos.": ["10.0.1.11"],
                "web-abcde-s1.marathon.slave.mesos.": ["10.0.1.11"],
                "web-fghij-s2.marathon.mesos.": ["10.0.1.12"],
                "web-fghij-s2.marathon.slave.mesos.": ["10.0.1.12"],
                "web.marathon.mesos.": ["10.0.1.11", "10.0.1.12"],
                "web.marathon.slave.mesos.": ["10.0.1.11", "10.0.1.12"],
            },
            "AAAAs": {
                "web-abcde-s1.marathon.mesos.": ["fd01:b::11"],
                "web.marathon.mesos.": ["fd01:b::11"],
            },
            "SRVs": {
                "_framework._tcp.marathon.mesos.": ["marathon.mesos.:8080"],
                "_http._web._tcp.marathon.mesos.": ["web-abcde-s1.marathon.mesos.:8080"],
                "_leader._tcp.mesos.": ["leader.mesos.:5050"],
                "_web._tcp.marathon.mesos.": ["web-abcde-s1.marathon.slave.mesos.:31000",
                                              "web-fghij-s2.marathon.slave.mesos.:31002"],
            },
        },
    }
    assert list(view) == ["TTL", "Serial", "RefreshSeconds", "Mname", "Rname", "Domain", "Records"]
    assert list(view["Records"]) == ["As", "AAAAs", "SRVs"]
    assert list(view["Records"]["As"])[:2] == ["chronos.mesos.", "leader.mesos."]  # Go sorts map keys


def test_axfr_uses_the_node_soa_values():
    config = MesosDnsConfig(domain="Mesos.", ttl=5, refresh_seconds=1, soa_mname="ns.spartan.",
                            soa_rname="support@mesosphere.com")
    view = axfr_view(table(), config, serial=7)
    assert {k: v for k, v in view.items() if k != "Records"} == {
        "TTL": 5, "Serial": 7, "RefreshSeconds": 1, "Mname": "ns.spartan.",
        "Rname": "support.mesosphere.com.", "Domain": "mesos"}


def test_axfr_of_an_empty_table_keeps_every_map():
    assert axfr_view({}, MesosDnsConfig(), serial=1)["Records"] == {"As": {}, "AAAAs": {}, "SRVs": {}}


def test_config_reports_mesos_dns_field_names():
    config = MesosDnsConfig(port=61053, http_port=31100, listener="127.0.0.1", http_listener="127.0.0.1",
                            resolvers=("10.0.0.53",), zone_resolvers={"corp.": ("10.1.0.53", "10.1.0.54")},
                            ip_sources=("host", "netinfo"), refresh_seconds=30, enforce_rfc952=True,
                            enumeration_on=False)
    assert config_view(config, serial=1764150000) == {
        "RefreshSeconds": 30,
        "Port": 61053,
        "Timeout": 5,
        "StateTimeoutSeconds": 300,
        "ZkDetectionTimeout": 30,
        "HttpPort": 31100,
        "TTL": 60,
        "SRVRecordDefaultWeight": 1,
        "SOASerial": 1764150000,
        "SOARefresh": 60,
        "SOARetry": 600,
        "SOAExpire": 86400,
        "SOAMinttl": 60,
        "SOAMname": "ns1.mesos.",
        "SOARname": "root.ns1.mesos.",
        "Masters": [],
        "ZoneResolvers": {"corp.": ["10.1.0.53", "10.1.0.54"]},
        "Resolvers": ["10.0.0.53"],
        "IPSources": ["host", "netinfo"],
        "Zk": "",
        "Domain": "mesos",
        "File": "",
        "Listener": "127.0.0.1",
        "HTTPListener": "127.0.0.1",
        "RecurseOn": True,
        "DnsOn": True,
        "HttpOn": True,
        "ExternalOn": True,
        "SetTruncateBit": True,
        "EnforceRFC952": True,
        "EnumerationOn": False,
        "MesosHTTPSOn": False,
        "CACertFile": "",
        "IAMConfigFile": "",
    }
