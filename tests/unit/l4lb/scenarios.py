"""The l4lb scenarios: each shared fixture as Wayfinder entities in, its VIP table out.

Inputs are the entities (tasks, agents, frameworks) the Mesos tables would hold.
Every route goes through the producers' pure code, so the VIP derivation is tested on
exactly those entities:
- operator API streams, GET_STATE replies and master states: ``observe`` (the producer path);
- master states in minuteman-vips/: ``parse_master_state``;
- agent ``/state`` documents (minuteman-vips and mesos-state): their executors' tasks through
  ``task_of``, the document itself as the one Agent, its frameworks through ``framework_of``.

The expected output is ``tests/scenarios/<folder>--<stem>/vips.json`` (a golden file,
reviewed by hand); ``WAYFINDER_UPDATE_GOLDEN=1`` rewrites it. Review the diff.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec
import orjson

from processors.l4lb.derive import Derived
from producers.mesos.normalize import agent_of, framework_of, task_of
from producers.mesos.snapshot import parse_master_state
from producers.problems import Problems
from schemas.mesos import TERMINAL_STATES, Agent, Framework, Task
from tests.scenarios.mesos_fixtures import FIXTURES, MESOS_FIXTURES, SCENARIOS, fixture_kind, observe

# example-marathon-app.json is a Marathon app definition, not a Mesos document: it has no
# tasks, agents or frameworks, so there is nothing to derive VIPs from.
MINUTEMAN_FIXTURES = sorted(p for p in (FIXTURES / "minuteman-vips").glob("*.json") if p.name != "example-marathon-app.json")
ALL_FIXTURES = sorted(MESOS_FIXTURES + MINUTEMAN_FIXTURES)


@dataclass(frozen=True)
class Cluster:
    tasks: dict[str, Task]
    agents: dict[str, Agent]
    frameworks: dict[str, Framework]


def scenario_name(fixture: Path) -> str:
    return f"{fixture.parent.name}--{fixture.stem}"


def golden_path(fixture: Path) -> Path:
    return SCENARIOS / scenario_name(fixture) / "vips.json"


def _is_agent_state(doc: dict) -> bool:
    return "leader" not in doc and "master_hostname" in doc


def _agent_state(doc: dict) -> Cluster:
    problems = Problems()
    agent = agent_of(doc)
    frameworks, tasks = {}, {}
    for raw in doc.get("frameworks") or []:
        framework = framework_of(raw)
        frameworks[framework.id] = framework
        for executor in raw.get("executors") or []:
            for raw_task in executor.get("tasks") or []:
                task = task_of(raw_task, problems, framework.id)
                if task.state not in TERMINAL_STATES:
                    tasks[task.id] = task
    assert not problems.found, problems.found
    return Cluster(tasks, {agent.id: agent}, frameworks)


def cluster_of(fixture: Path) -> Cluster:
    """The entities a fixture describes, by whichever pure path fits its kind."""
    if fixture.parent.name == "minuteman-vips":
        body = fixture.read_bytes()
        doc = orjson.loads(body)
        if _is_agent_state(doc):
            return _agent_state(doc)
        snapshot, _, _ = parse_master_state(body)
        return Cluster(dict(snapshot.tasks), dict(snapshot.agents), dict(snapshot.frameworks))
    if fixture_kind(fixture) == "agent-state":
        return _agent_state(orjson.loads(fixture.read_bytes()))
    _, publisher = observe(fixture)
    tables = {alias: dict(publisher.tables[alias].items()) for alias in ("tasks", "agents", "frameworks")}
    return Cluster(tables["tasks"], tables["agents"], tables["frameworks"])


def as_json(derived: Derived) -> dict:
    """The derivation as plain JSON: the VIP records by key, allocations as rows, rejections."""
    return {
        "vips": msgspec.to_builtins(derived.vips),
        "allocations": [
            {"family": f"ipv{family}", "name": name, "framework": framework, "ip": ip}
            for family, names in sorted(derived.allocations.items())
            for (name, framework), ip in names.items()
        ],
        "rejections": [asdict(r) for r in derived.rejections],
    }


def expected(fixture: Path, actual: dict) -> dict:
    """The golden output; with WAYFINDER_UPDATE_GOLDEN=1, rewritten from ``actual`` first."""
    path = golden_path(fixture)
    if os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n")
    return orjson.loads(path.read_bytes())
