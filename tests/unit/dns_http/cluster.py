"""A small Mesos-DNS record table, written by hand as the DNS processor would publish it.

Marathon runs app /web as two tasks: web.1111 on agent ...-S1 (10.0.1.11, also fd01:b::11 on
its container) and web.2222 on agent ...-S2 (10.0.1.12). Their canonical names carry the
hashes abcde and fghij. web.1111 also has a named DiscoveryInfo port (`_http._web._tcp`).
Chronos is registered but runs nothing; the leading master is 10.0.0.1. One name lives in the
l4lb zone, outside the Mesos domain.
"""

from schemas.dns import RecordSet, record_set_key

T1, T2 = "web.1111", "web.2222"

SETS = [
    # cluster
    RecordSet("leader.mesos.", "A", 60, ["10.0.0.1"]),
    RecordSet("_leader._tcp.mesos.", "SRV", 60, ["0 1 5050 leader.mesos."]),
    # frameworks
    RecordSet("marathon.mesos.", "A", 60, ["10.0.0.2"], framework="marathon"),
    RecordSet("_framework._tcp.marathon.mesos.", "SRV", 60, ["0 1 8080 marathon.mesos."], framework="marathon"),
    RecordSet("chronos.mesos.", "A", 60, ["10.0.0.3"], framework="chronos"),
    # tasks of /web
    RecordSet("web.marathon.mesos.", "A", 60, ["10.0.1.11", "10.0.1.12"], "marathon", [T1, T2]),
    RecordSet("web.marathon.mesos.", "AAAA", 60, ["fd01:b::11"], "marathon", [T1]),
    RecordSet("web-abcde-s1.marathon.mesos.", "A", 60, ["10.0.1.11"], "marathon", [T1]),
    RecordSet("web-abcde-s1.marathon.mesos.", "AAAA", 60, ["fd01:b::11"], "marathon", [T1]),
    RecordSet("web-fghij-s2.marathon.mesos.", "A", 60, ["10.0.1.12"], "marathon", [T2]),
    RecordSet("web.marathon.slave.mesos.", "A", 60, ["10.0.1.11", "10.0.1.12"], "marathon", [T1, T2]),
    RecordSet("web-abcde-s1.marathon.slave.mesos.", "A", 60, ["10.0.1.11"], "marathon", [T1]),
    RecordSet("web-fghij-s2.marathon.slave.mesos.", "A", 60, ["10.0.1.12"], "marathon", [T2]),
    RecordSet("_web._tcp.marathon.mesos.", "SRV", 60,
              ["0 1 31000 web-abcde-s1.marathon.slave.mesos.", "0 1 31002 web-fghij-s2.marathon.slave.mesos."],
              "marathon", [T1, T2]),
    RecordSet("_http._web._tcp.marathon.mesos.", "SRV", 60, ["0 1 8080 web-abcde-s1.marathon.mesos."],
              "marathon", [T1]),
    # another zone, same table
    RecordSet("web.marathon.autoip.dcos.thisdcos.directory.", "A", 5, ["10.0.1.11"], "marathon", [T1]),
]


def table(sets=SETS) -> dict[str, RecordSet]:
    return {record_set_key(s.name, s.type): s for s in sets}
