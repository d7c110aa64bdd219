"""Every Mesos fixture through the pure producer path gives exactly its golden tables."""

import pytest

from tests.scenarios.mesos_fixtures import MESOS_FIXTURES, expected_tables, fixture_kind, observe, scenario_name, tables_of

PURE_FIXTURES = [f for f in MESOS_FIXTURES if fixture_kind(f) != "agent-state"]


@pytest.mark.parametrize("fixture", PURE_FIXTURES, ids=scenario_name)
def test_fixture_tables_match_golden(fixture):
    sink, _ = observe(fixture)
    actual = tables_of(sink.table)
    assert actual == expected_tables(fixture, actual)
