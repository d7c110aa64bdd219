"""`python -m cli.simulate_command`: prints its URLs, runs the scenario, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from tests.simulator.conftest import FIXTURES, WAIT

ROOT = Path(__file__).resolve().parents[2]


async def test_simulate_command_serves_runs_scenario_and_stops_cleanly(http, tmp_path):
    scenario = tmp_path / "scenario.jsonl"
    scenario.write_text('{"after": 0.1, "method": "POST", "path": "/sim/apps", "body": {"id": "/cli", "instances": 2}}\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.simulate_command", "--mesos-listen", "127.0.0.1:0",
        "--marathon-listen", "127.0.0.1:0", "--mesos-state", str(FIXTURES / "mesos-state/state2.json"),
        "--scenario", str(scenario), "--heartbeat", "1", "--seed", "5",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        mesos = (await asyncio.wait_for(process.stdout.readline(), WAIT)).decode().strip()
        marathon = (await asyncio.wait_for(process.stdout.readline(), WAIT)).decode().strip()
        assert mesos.startswith("mesos: http://127.0.0.1:") and marathon.startswith("marathon: http://127.0.0.1:")
        step = json.loads(await asyncio.wait_for(process.stdout.readline(), WAIT))
        assert (step["status"], [c["kind"] for c in step["reply"]["changes"]].count("task_state")) == (200, 4)
        async with http.get(mesos.split(" ", 1)[1] + "/master/state") as response:
            state = await response.json()
        assert sum(len(f["tasks"]) for f in state["frameworks"]) == 3
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0


async def test_simulate_command_refuses_a_malformed_document(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"slaves": [')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.simulate_command", "--mesos-state", str(bad),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 1
    assert f"{bad}: malformed JSON at line 1" in stderr.decode()
