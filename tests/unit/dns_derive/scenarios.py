"""The DNS scenarios: each shared Mesos fixture as Wayfinder entities in, its zone out.

Inputs are the tables a Mesos producer publishes for the fixture (``observe``: stream,
GET_STATE and master-state fixtures, the cluster record included); agent ``/state``
documents, which have no master, go through the l4lb scenarios' agent-state reader and so
have no cluster records.

The expected output is ``tests/scenarios/<fixture>/dns.zone``: every record as a sorted
zone-file line (``name ttl IN type rdata``), then every rejection as a ``;`` comment.
``WAYFINDER_UPDATE_GOLDEN=1`` rewrites it; review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

from processors.dns.derive import Derived, derive_records
from tests.scenarios.mesos_fixtures import MESOS_FIXTURES, SCENARIOS, fixture_kind, observe, scenario_name
from tests.unit.l4lb.scenarios import cluster_of

HAND = Path(__file__).resolve().parent / "hand"

__all__ = ["HAND", "MESOS_FIXTURES", "derived_of", "expected_zone", "scenario_name", "zone_lines", "zone_text"]


def tables_of(fixture: Path) -> tuple[dict, dict, dict, dict]:
    """(tasks, agents, frameworks, clusters) as the Mesos tables would hold them."""
    if fixture_kind(fixture) == "agent-state":
        cluster = cluster_of(fixture)
        return cluster.tasks, cluster.agents, cluster.frameworks, {}
    _, publisher = observe(fixture)
    return tuple(dict(publisher.tables[alias].items()) for alias in ("tasks", "agents", "frameworks", "cluster"))


def derived_of(fixture: Path) -> Derived:
    return derive_records(*tables_of(fixture))


def zone_lines(derived: Derived) -> list[str]:
    return sorted(f"{r.name} {r.ttl} IN {r.type} {rdata}" for r in derived.records.values() for rdata in r.rdata)


def zone_text(derived: Derived) -> str:
    refused = sorted(f"; rejected {r.subject}: {r.value}: {r.why}" for r in derived.rejections)
    return "\n".join(zone_lines(derived) + refused) + "\n"


def expected_zone(fixture: Path, actual: str) -> str:
    """The golden zone; with WAYFINDER_UPDATE_GOLDEN=1, rewritten from ``actual`` first."""
    path = SCENARIOS / scenario_name(fixture) / "dns.zone"
    if os.environ.get("WAYFINDER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    return path.read_text()


def records_of_zone(text: str) -> list[str]:
    """The record lines of zone text, sorted, without comments and blank lines."""
    return sorted(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith(";"))
