"""The stage contract without Kafka: explicit sources, batches coalesced per output key, only
differences published, the L4 re-seed that keeps published named-VIP addresses, readiness."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.dns.agent import DnsStage
from processors.dns.table import KINDS as DNS_KINDS
from processors.l4lb.table import KINDS as L4_KINDS
from processors.l4lb.agent import L4Stage
from processors.readiness import is_ready, producers_of
from processors.replay import fresh_outputs
from processors.stage import SourceRecord
from runtime.tables import MemorySink
from schemas import codec
from schemas.catalog import Catalog
from schemas.headers import Observation
from schemas.status import Mark
from tests.integration.processor_cluster import AGENTS, FRAMEWORK, agent, app_task

CATALOG = Catalog("unit")


def record(alias: str, key: str, entity, observed_ns: int = 1) -> SourceRecord:
    return SourceRecord(alias, key, codec.encode(entity) if entity is not None else None, Observation(f"t{observed_ns}", observed_ns))


def base_batch() -> dict[str, list[SourceRecord]]:
    return {"agents": [record("agents", agent(n).id, agent(n)) for n in range(AGENTS)],
            "frameworks": [record("frameworks", FRAMEWORK.id, FRAMEWORK)]}


def test_every_stage_declares_its_sources_as_kinds_its_table_takes():
    for stage, kinds in ((L4Stage(CATALOG), L4_KINDS), (DnsStage(CATALOG), DNS_KINDS)):
        assert set(stage.sources) <= {"agents", "frameworks", "cluster", "tasks"}
        for source in stage.sources.values():
            assert source.kind in kinds and issubclass(source.entity, msgspec.Struct)


def test_each_key_of_a_batch_carries_the_observation_of_its_own_newest_change():
    stage = L4Stage(CATALOG)
    stage.start({})
    stage.apply(base_batch())
    sink = MemorySink()
    stage.publish_difference(sink, {})
    one, other, later = app_task(0, 1), app_task(1, 1), app_task(0, 2)
    stage.apply({"tasks": [record("tasks", later.id, later, 30), record("tasks", one.id, one, 10),
                           record("tasks", other.id, other, 20)]})
    stage.publish_pending(sink)
    observed = {msgspec.json.decode(value)["name"]: dict(headers)["wf-observed-ns"]
                for _, _, value, headers in sink.records}
    assert observed == {"/app0": b"30", "/app1": b"20"}


def test_a_batch_publishes_each_changed_key_once_with_the_newest_observation():
    stage = L4Stage(CATALOG)
    stage.start({})
    stage.apply(base_batch())
    sink = MemorySink()
    stage.publish_difference(sink, {})
    assert len(sink.records) == 0  # no tasks, no VIPs

    first, second = app_task(0, 1), app_task(0, 2)
    stage.apply({"tasks": [record("tasks", first.id, first, 10), record("tasks", second.id, second, 20)]})
    stage.publish_pending(sink)
    (published,) = sink.records
    assert dict(published[3])["wf-observed-ns"] == b"20"
    assert {b["task_id"] for b in msgspec.json.decode(published[2])["backends"]} == {first.id, second.id}

    stage.apply({"tasks": [record("tasks", second.id, second, 30)]})  # the same task again: no change
    stage.publish_pending(sink)
    assert len(sink.records) == 1


def test_a_takeover_publishes_only_the_difference_to_what_the_topic_holds():
    task = app_task(1, 1)
    sources = {"agents": {agent(n).id: codec.encode(agent(n)) for n in range(AGENTS)},
               "frameworks": {FRAMEWORK.id: codec.encode(FRAMEWORK)}, "tasks": {task.id: codec.encode(task)}}
    expected = fresh_outputs(CATALOG, sources, {})
    stage = DnsStage(CATALOG)
    stage.start({})
    stage.apply(base_batch() | {"tasks": [record("tasks", task.id, task)]})
    held = dict(expected["dns"])
    stale_key = next(iter(held))
    held[stale_key] = b"{}"
    held["gone.mesos./A"] = b"{}"
    sink = MemorySink()
    assert stage.publish_difference(sink, held) == 2
    assert sink.table(CATALOG.topic("dns").name) == {stale_key: expected["dns"][stale_key]}
    assert [key for _, key, value, _ in sink.records if value is None] == ["gone.mesos./A"]


def test_a_takeover_keeps_the_named_vip_addresses_the_topic_holds():
    task = app_task(3, 1)
    stage = L4Stage(CATALOG)
    stage.start({})
    stage.apply(base_batch() | {"tasks": [record("tasks", task.id, task)]})
    (key, vip), = stage.table.records.items()
    moved = msgspec.structs.replace(vip, ip="11.0.0.9")
    stage.reseed({"tcp/11.0.0.9/80": codec.encode(moved)})
    assert [v.ip for v in stage.table.records.values()] == ["11.0.0.9"]


def mark(synced: bool, positions) -> Mark:
    return Mark(role="producer", instance="p", started_at=1.0, heartbeat_at=1.0, in_sync=synced,
                synced_at=1.0 if synced else None, positions=positions)


def test_ready_once_the_positions_reach_a_synced_producer_of_every_source():
    producers = producers_of(CATALOG, ["agents", "tasks"])
    assert producers == {"producer/mesos": ["agents", "tasks"]}
    positions = {"agents": {0: 3}, "tasks": {0: 10, 1: 4}}
    assert not is_ready(positions, {}, producers)
    assert not is_ready(positions, {"producer/mesos": mark(False, {"tasks": {0: 1}})}, producers)
    assert not is_ready(positions, {"producer/mesos": mark(True, {"tasks": {0: 11}})}, producers)
    assert is_ready(positions, {"producer/mesos": mark(True, {"tasks": {0: 10, 1: 4}, "apps": {0: 99}})}, producers)


# One history of source records: tasks of three apps come and go (some ids twice), agents
# vanish and return. Each step is (alias, key, entity or None).
_TASK_STEPS = st.builds(lambda app, serial, alive: ("tasks", app_task(app, serial).id, app_task(app, serial) if alive else None),
                        st.integers(0, 2), st.integers(0, 7), st.booleans())
_AGENT_STEPS = st.builds(lambda n, alive: ("agents", agent(n).id, agent(n) if alive else None),
                         st.integers(0, AGENTS - 1), st.booleans())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.one_of(_TASK_STEPS, _TASK_STEPS, _AGENT_STEPS), min_size=1, max_size=50),
       st.lists(st.integers(1, 10), min_size=1, max_size=10))
def test_coalesced_batches_publish_what_the_whole_derivation_gives(history, cuts):
    """However the history is cut into batches, and with only the newest record of each key
    kept per batch (as the processor coalesces), what the stages publish is the table that a
    fresh derivation of the final sources gives."""
    stages = [L4Stage(CATALOG), DnsStage(CATALOG)]
    sink = MemorySink()
    for stage in stages:
        stage.start({})
        stage.apply(base_batch())
        stage.publish_difference(sink, {})
    sources = {"agents": {agent(n).id: codec.encode(agent(n)) for n in range(AGENTS)},
               "frameworks": {FRAMEWORK.id: codec.encode(FRAMEWORK)}, "tasks": {}}
    start, step = 0, 0
    while start < len(history):
        size = cuts[step % len(cuts)]
        newest: dict[tuple[str, str], SourceRecord] = {}
        for n, (alias, key, entity) in enumerate(history[start:start + size]):
            newest[(alias, key)] = record(alias, key, entity, start + n + 1)
            if entity is None:
                sources[alias].pop(key, None)
            else:
                sources[alias][key] = codec.encode(entity)
        batch: dict[str, list[SourceRecord]] = {}
        for (alias, _), source_record in newest.items():
            batch.setdefault(alias, []).append(source_record)
        for stage in stages:
            stage.apply(batch)
            stage.publish_pending(sink)
        start, step = start + size, step + 1
    expected = fresh_outputs(CATALOG, sources, {})
    assert sink.table(CATALOG.topic("vips").name) == expected["vips"]
    assert sink.table(CATALOG.topic("dns").name) == expected["dns"]


def _in_app(task, task_id: str, app: str):
    """The same task under another id, in app `app` behind the named VIP /<app>:80."""
    port = msgspec.structs.replace(task.discovery.ports[0], labels={"VIP_0": f"/{app}:80", "network-scope": "host"})
    return msgspec.structs.replace(task, id=task_id, name=app,
                                   discovery=msgspec.structs.replace(task.discovery, name=app, ports=[port]))


def test_an_output_record_too_big_for_kafka_is_rejected_and_the_others_published():
    """A VIP of 12,000 backends encodes to 1.16 MB, more than a Kafka record may hold: it is
    reported in rejections and left out, and a small app's VIP in the same batch goes out."""
    from bench.workload import Workload

    huge, small = Workload(12_000, 12_000), Workload(3, 3)
    stage = L4Stage(CATALOG)
    stage.start({})
    entities = ([record("agents", key, value) for key, value in huge.agents().items()]
                + [record("frameworks", key, value) for key, value in huge.frameworks().items()])
    tasks = [record("tasks", key, task) for key, task in huge.initial()]
    tasks += [record("tasks", f"small-{key}", _in_app(task, f"small-{key}", "small")) for key, task in small.initial()]
    stage.apply({"agents": entities[:-1], "frameworks": entities[-1:], "tasks": tasks})
    sink = MemorySink()
    assert stage.publish_difference(sink, {}) == 1
    (published,) = sink.table(CATALOG.topic("vips").name).values()
    assert msgspec.json.decode(published)["name"] == "/small"
    (rejected,) = stage.take_rejections()
    assert rejected.source == "l4lb" and rejected.what.startswith("vips record tcp/")
    assert "over the 921,600 a Kafka record may hold" in rejected.why
