"""A node's metrics as a scrape reads them: `NodeCollector` rendered as Prometheus text and
parsed back, for tests that run a real `Node` (no HTTP endpoint, no Prometheus)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from appliers.metrics import NodeCollector


def scrape(node) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `node` (appliers.node.Node) by (name, sorted labels)."""
    text = generate_latest(NodeCollector(node)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    """One sample of a scrape; KeyError (naming what was there) when it is missing."""
    key = (name, tuple(sorted(labels.items())))
    if key not in found:
        raise KeyError(f"{key} not scraped; found {sorted(k for k in found if k[0] == name)}")
    return found[key]
