"""Golden lease tables: the agents of every shared Mesos fixture, arriving in agent id order,
leased on DC/OS's two overlays and on a tiny one of two subnets (so the fixtures with more
agents show its exhaustion too). Expected: ``tests/scenarios/<fixture>/overlay-leases.json``,
every lease and every rejection; ``WAYFINDER_UPDATE_GOLDEN=1`` rewrites it; review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from processors.overlay.config import parse_config
from processors.overlay.table import LeaseTable
from schemas.overlay import Lease
from tests.scenarios.mesos_fixtures import SCENARIOS
from tests.unit.dns_derive.scenarios import MESOS_FIXTURES, scenario_name, tables_of

CONFIG = parse_config(["dcos=9.0.0.0/8,24", "dcos6=fd01:b::/64,80", "tiny=10.99.0.0/28,29"])


def leased(fixture: Path) -> dict:
    agents = tables_of(fixture)[1]
    table = LeaseTable(CONFIG)
    ordered = sorted(agents.items())
    table.apply_batch([("agent", key, agent) for key, agent in ordered], [0.0] * len(ordered))
    return {"leases": {key: {name: getattr(lease, name) for name in Lease.__struct_fields__}
                       for key, lease in sorted(table.records.items())},
            "rejections": sorted(f"{what}: {why}" for what, why, _ in table.take_refusals())}


@pytest.mark.parametrize("fixture", MESOS_FIXTURES, ids=scenario_name)
def test_the_fixtures_agents_get_the_golden_leases(fixture):
    actual = orjson.dumps(leased(fixture), option=orjson.OPT_INDENT_2) + b"\n"
    path = SCENARIOS / scenario_name(fixture) / "overlay-leases.json"
    if os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
    assert orjson.loads(actual) == orjson.loads(path.read_bytes())


def test_a_replay_of_each_golden_table_keeps_every_lease():
    for fixture in MESOS_FIXTURES:
        published = [Lease(**fields) for fields in orjson.loads(
            (SCENARIOS / scenario_name(fixture) / "overlay-leases.json").read_bytes())["leases"].values()]
        agents = tables_of(fixture)[1]
        table = LeaseTable(CONFIG, published)
        table.apply_batch([("agent", key, agent) for key, agent in sorted(agents.items(), reverse=True)])
        assert {key: lease for key, lease in table.records.items()} == {
            f"{lease.overlay}/{lease.agent_id}": lease for lease in published}, fixture.name
