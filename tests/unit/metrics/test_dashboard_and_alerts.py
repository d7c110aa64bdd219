"""The shipped Grafana dashboard and Prometheus alert rules name only metrics Wayfinder
exports, and the rules are valid for Prometheus itself (promtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliers.metrics import EXPORTED as NODE_EXPORTED
from runtime.metrics import EXPORTED as STAGE_EXPORTED

COMPOSE = Path(__file__).resolve().parents[3] / "compose"
DASHBOARD = COMPOSE / "grafana" / "wayfinder-dashboard.json"
ALERTS = COMPOSE / "prometheus" / "alerts.yml"
# what Prometheus adds itself, and prometheus_client's standard process metrics
OTHERS = {"up"}
HISTOGRAM_SAMPLES = ("_bucket", "_sum", "_count")


def _exported() -> set[str]:
    names = set(STAGE_EXPORTED | NODE_EXPORTED)
    histograms = {name for name in names if name.endswith("_seconds")}
    return names | {h + suffix for h in histograms for suffix in HISTOGRAM_SAMPLES}


def _named(expression: str) -> set[str]:
    return set(re.findall(r"\b(wayfinder_[a-z0-9_]+|up)\b", expression))


def test_every_dashboard_query_names_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(queries) >= 10
    named = set().union(*map(_named, queries))
    assert named - _exported() - OTHERS == set()
    # what the issue asks the dashboard to show
    for wanted in ("wayfinder_node_convergence_seconds_bucket", "wayfinder_rejections_total",
                   "wayfinder_dns_queries_total", "wayfinder_processor_lag_records",
                   "wayfinder_producer_seconds_since_last_event", "wayfinder_role_ready",
                   "wayfinder_role_apply_seconds_bucket"):
        assert wanted in named


def test_every_alert_names_only_exported_metrics():
    named = _named(ALERTS.read_text())
    assert named - _exported() - OTHERS == set()
    assert {"wayfinder_role_ready", "wayfinder_node_convergence_seconds_bucket",
            "wayfinder_producer_seconds_since_last_contact", "wayfinder_processor_lag_records"} <= named


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs Debian's prometheus package (make installs it)")
def test_promtool_accepts_the_alert_rules():
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
