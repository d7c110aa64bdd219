"""The overlay and DNS stages together, as `processors.replay.processor_stages` wires them: the
DNS stage reads the overlay stage's leases in place, and derives an agent's tasks again when
its leases change, in the same batch or at the same tick."""

from __future__ import annotations

import msgspec.structs

from processors.dns.agent import DnsStage
from processors.overlay.agent import OverlayStage
from processors.overlay.config import parse_config
from processors.replay import fresh_outputs, processor_stages
from processors.stage import SourceRecord
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.mesos import Framework
from tests.unit.dns_derive.entities import task
from tests.unit.overlay.leases import agent

CATALOG = Catalog("unit")
# Two subnets: a third agent waits for one.
CONFIG = parse_config(["dcos=9.0.0.0/23,24"], vtep6="", grace_s=10)
FRAMEWORK = Framework(id="fw-1", name="marathon", hostname="10.0.0.100", ip="10.0.0.100")
CONTAINERIP = "web.marathon.containerip.dcos.thisdcos.directory./A"


def on(n: int, *ips: str):
    return task("web", ips=ips, agent=agent(n))


def batch(at: float, **tables: dict) -> dict[str, list[SourceRecord]]:
    obs = Observation(f"t{at}", int(at * 1e9))
    return {alias: [SourceRecord(alias, key, codec.encode(value) if value is not None else None, obs)
                    for key, value in records.items()] for alias, records in tables.items()}


def stages() -> tuple[OverlayStage, DnsStage]:
    found = processor_stages(CATALOG, overlay=CONFIG)
    names = [stage.name for stage in found]
    assert names.index("overlay") < names.index("dns")  # leases first, then the names that check them
    for stage in found:
        stage.start({})
    return next(s for s in found if s.name == "overlay"), next(s for s in found if s.name == "dns")


def apply(overlay: OverlayStage, dns: DnsStage, records: dict) -> None:
    overlay.apply(records)
    dns.apply(records)


def test_a_task_and_its_agent_in_one_batch_get_names_inside_the_lease_only():
    overlay, dns = stages()
    apply(overlay, dns, batch(1.0, agents={"S1": agent(1), "S2": agent(2)}, frameworks={"fw-1": FRAMEWORK},
                              tasks={"fw-1/in": on(1, "9.0.0.5"), "fw-1/out": task("api", ips=("9.0.1.5",), agent=agent(1))}))
    assert dns.table.records[CONTAINERIP].rdata == ["9.0.0.5"]
    assert "api.marathon.containerip.dcos.thisdcos.directory./A" not in dns.table.records
    (rejected,) = dns.take_rejections()
    assert (rejected.source, rejected.excerpt) == ("dns", "9.0.1.5")
    assert rejected.why == "address in overlay dcos (9.0.0.0/23) but outside agent S1's lease 9.0.0.0/24: no names with this address"


def test_a_lease_given_when_another_is_freed_brings_the_names_at_the_same_tick():
    overlay, dns = stages()
    apply(overlay, dns, batch(1.0, agents={"S1": agent(1), "S2": agent(2), "S3": agent(3)}, frameworks={"fw-1": FRAMEWORK},
                              tasks={"fw-1/web": on(3, "9.0.0.5")}))
    assert CONTAINERIP not in dns.table.records  # S3 waits for a subnet
    dns.pending.clear()
    apply(overlay, dns, batch(2.0, agents={"S1": None}))
    for stage in (overlay, dns):  # the processor's order
        stage.tick(20.0)
    assert overlay.table.leases_of("S3")["dcos"].subnet == "9.0.0.0/24"
    assert dns.table.records[CONTAINERIP].rdata == ["9.0.0.5"]
    assert dns.pending[CONTAINERIP].observed_ns == 20 * 10**9  # published with the lease's change


def test_a_fresh_derivation_checks_against_the_leases_it_derives():
    sources = {"agents": {"S1": codec.encode(agent(1))}, "frameworks": {"fw-1": codec.encode(FRAMEWORK)},
               "tasks": {"fw-1/web": codec.encode(on(1, "9.0.0.5")), "fw-1/api": codec.encode(task("api", ips=("9.0.1.5",), agent=agent(1)))}}
    outputs = fresh_outputs(CATALOG, sources, {}, overlay=CONFIG)
    assert CONTAINERIP in outputs["dns"]
    assert "api.marathon.containerip.dcos.thisdcos.directory./A" not in outputs["dns"]
    assert sorted(outputs["overlay"]) == ["dcos/S1"]


def test_a_takeover_that_takes_the_published_leases_rederives_before_publishing():
    overlay, dns = stages()
    apply(overlay, dns, batch(1.0, agents={"S1": agent(1)}, frameworks={"fw-1": FRAMEWORK}, tasks={"fw-1/web": on(1, "9.0.1.5")}))
    assert CONTAINERIP not in dns.table.records  # this standby leased S1 9.0.0.0/24
    held = overlay.table.leases_of("S1")["dcos"]
    published = msgspec.structs.replace(held, subnet="9.0.1.0/24", mesos_subnet="9.0.1.0/25", docker_subnet="9.0.1.128/25")
    overlay.reseed({"dcos/S1": codec.encode(published)})  # the previous active had leased it 9.0.1.0/24
    dns.reseed({})
    assert dns.table.records[CONTAINERIP].rdata == ["9.0.1.5"]
