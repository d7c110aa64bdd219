"""The overlay stage (processors/overlay/agent.py) through the stage contract: a departure's
time is its tombstone's observation, time alone frees leases (tick), a takeover re-seeds
from the topic, and a lease tombstoned by hand in the topic is honoured."""

from __future__ import annotations

from processors.overlay.agent import OverlayStage
from processors.replay import fresh_outputs
from processors.stage import SourceRecord
from runtime.tables import MemorySink
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.overlay import Lease
from tests.unit.overlay.leases import DEFAULT, V4_ONLY, agent

CATALOG = Catalog("unit")
TOPIC = CATALOG.topic("overlay").name
SECOND = 1_000_000_000


def agents(*records: tuple[str, object, float]) -> dict[str, list[SourceRecord]]:
    """(agent id, Agent or None, observed at in seconds) -> an ``agents`` batch."""
    return {"agents": [SourceRecord("agents", key, codec.encode(value) if value is not None else None,
                                    Observation(f"t{at}", int(at * SECOND))) for key, value, at in records]}


def started(config=V4_ONLY, published=None) -> tuple[OverlayStage, MemorySink]:
    stage = OverlayStage(CATALOG, config)
    stage.start(published or {})
    return stage, MemorySink()


def test_the_gone_time_is_the_tombstones_observation_and_a_tick_publishes_the_free():
    stage, sink = started()
    stage.apply(agents(("S1", agent(1), 1.0), ("S2", agent(2), 2.0)))
    stage.publish_pending(sink)
    stage.apply(agents(("S1", None, 100.0)))
    stage.publish_pending(sink)
    assert codec.decode(sink.table(TOPIC)["dcos/S1"], Lease).gone_since == 100.0
    stage.tick(699.0)
    assert stage.pending == {}
    stage.tick(700.0)
    assert stage.pending["dcos/S1"].observed_ns == 700 * SECOND
    stage.publish_pending(sink)
    assert sorted(sink.table(TOPIC)) == ["dcos/S2"]


def test_a_hand_tombstone_in_the_topic_frees_a_gone_agents_lease_for_the_next_agent():
    stage, sink = started()
    stage.apply(agents(("S1", agent(1), 1.0), ("S2", agent(2), 2.0), ("S1", None, 3.0)))
    stage.publish_pending(sink)
    stage.apply({"overlay": [SourceRecord("overlay", "dcos/S1", None, Observation.now())]})
    assert stage.pending == {} and stage.take_rejections() == []
    stage.apply(agents(("S3", agent(3), 4.0)))
    stage.publish_pending(sink)
    assert codec.decode(sink.table(TOPIC)["dcos/S3"], Lease).subnet == "9.0.0.0/24"


def test_its_own_records_coming_back_change_nothing():
    stage, sink = started()
    stage.apply(agents(("S1", agent(1), 1.0)))
    stage.publish_pending(sink)
    stage.apply({"overlay": [SourceRecord("overlay", key, value, Observation.now()) for _, key, value, _ in sink.records]})
    assert stage.pending == {}


def test_a_takeover_adopts_the_published_leases_over_its_own():
    active, sink = started()
    active.apply(agents(("S1", agent(1), 1.0), ("S2", agent(2), 2.0)))
    active.publish_pending(sink)
    # the standby saw S2 first: its own choice differs
    standby, _ = started()
    standby.apply(agents(("S2", agent(2), 0.5), ("S1", agent(1), 1.0), ("S3", agent(3), 3.0)))
    assert standby.table.records["dcos/S2"].subnet == "9.0.0.0/24"
    published = sink.table(TOPIC)
    standby.reseed(published)
    written = MemorySink()
    assert standby.publish_difference(written, published) == 1  # S3's lease only
    assert {key: codec.decode(value, Lease).subnet for key, value in written.table(TOPIC).items()} == {
        "dcos/S3": "9.0.2.0/24"}
    assert standby.table.records["dcos/S2"].subnet == "9.0.1.0/24"


def test_a_restart_seeds_from_the_topic_and_derives_the_same_table():
    stage, sink = started(DEFAULT)
    stage.apply(agents(*((f"S{n}", agent(n), float(n)) for n in range(1, 5)), ("S2", None, 9.0)))
    stage.publish_pending(sink)
    restarted, _ = started(DEFAULT, sink.table(TOPIC))
    restarted.apply(agents(*((f"S{n}", agent(n), 20.0 - n) for n in (4, 3, 1)), ("S2", None, 9.0)))
    assert restarted.encoded_records() == sink.table(TOPIC)
    assert fresh_outputs(CATALOG, {"agents": {f"S{n}": codec.encode(agent(n)) for n in (1, 3, 4)}},
                         {"overlay": sink.table(TOPIC)})["overlay"] == sink.table(TOPIC)


def test_refusals_reach_rejections_under_the_stage_name():
    stage, _ = started()
    stage.apply(agents(("S1", agent(1, ip=None), 1.0)))
    assert [(r.source, r.what) for r in stage.take_rejections()] == [("overlay", "agent S1")]
    stage, _ = started(V4_ONLY, {"dcos/S9": b"not json"})
    assert [r.what for r in stage.take_rejections()] == ["overlay record dcos/S9"]
