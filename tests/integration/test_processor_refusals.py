"""A processor that can never be elected says why and exits, instead of waiting silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.pipeline import new_catalog

pytestmark = pytest.mark.kafka

WAYFINDER = str(Path(sys.executable).with_name("wayfinder"))


def test_a_session_timeout_the_broker_refuses_ends_the_processor_with_the_reason(kafka_bootstrap):
    # Below the broker's group.min.session.timeout.ms (1 s on ours, 6 s on a stock broker).
    done = subprocess.run([WAYFINDER, "process", "--bootstrap", kafka_bootstrap, "--namespace",
                           new_catalog().namespace, "--session-timeout-ms", "500"],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "Error: this processor cannot be elected: the broker refuses a group session of 500 ms (outside its "
        "group.min/max.session.timeout.ms); choose another --session-timeout-ms")
