"""The chaos suites' cluster and their one convergence check: the sources equal the simulated
cluster, the derived topics equal a fresh derivation, and the node answers (and, with root,
programs) exactly that."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.chaos.answers import expected_answers, wrong_answers
from tests.chaos.derive import fresh_derivation
from tests.chaos.stack import Stack
from tests.scenarios.mesos_fixtures import FIXTURES

AGENTS = {"chaos-a1": "10.210.0.1", "chaos-a2": "10.210.0.2", "chaos-a3": "10.210.0.3"}
APPS = 4  # 2 instances each; churn scales them up and down
CONVERGE_S = 90.0  # bound for a round's checks to pass once its churn ended


def kernel_available() -> bool:
    return os.geteuid() == 0 and shutil.which("nft") is not None and shutil.which("ip") is not None


def chaos_apps() -> list[dict]:
    return [{"id": f"/chaos/app{i}", "instances": 2, "cmd": "sleep 3600",
             "portDefinitions": [{"port": 0, "protocol": "tcp", "labels": {"VIP_0": f"/chaos/app{i}:{8000 + i}"}}]}
            for i in range(APPS)]


def start_with_apps(bootstrap: str, workdir: Path) -> Stack:
    """The stack on an empty cluster, started, with AGENTS and APPS added to the simulator."""
    running = Stack(bootstrap, workdir, FIXTURES / "mesos-state" / "empty.json", processors=2,
                    with_kernel=kernel_available())
    try:
        running.start()
        running.await_simulator()
        for agent_id, ip in AGENTS.items():
            running.control("POST", "/sim/agents", {"hostname": ip, "id": agent_id, "port_ranges": [[20000, 20999]]})
        for app in chaos_apps():
            running.control("POST", "/sim/apps", app)
    except BaseException:
        running.close()
        raise
    return running


def await_churn(stack: Stack, churn_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.control("GET", f"/sim/churn/{churn_id}")["running"]:
        assert time.monotonic() < deadline, "the simulator's churn did not end"
        time.sleep(0.2)


def assert_converged(stack: Stack, when: str) -> None:
    """Every check, retried until all pass at once or CONVERGE_S runs out (then the last
    failure is the assertion message, with every process's log tail)."""
    deadline = time.monotonic() + CONVERGE_S
    while True:
        problems = problems_of(stack)
        if not problems:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{when}: not converged after {CONVERGE_S}s:\n" + "\n".join(problems[:20])
                                 + f"\n{stack.logs()}")
        time.sleep(1.0)


def problems_of(stack: Stack) -> list[str]:
    try:
        running = stack.control("GET", "/sim/state")["tasks"]
        tasks = stack.table("tasks")
        if len(tasks) != running:
            return [f"tasks topic holds {len(tasks)} tasks, the cluster runs {running}"]
        derived = {alias: stack.table(alias) for alias in ("vips", "dns")}
        fresh = fresh_derivation(stack.bootstrap, stack.catalog)
    except (LookupError, TimeoutError, RuntimeError, OSError) as error:
        return [f"reading the pipeline failed: {error!r}"]
    problems = []
    for alias in ("vips", "dns"):
        if derived[alias] != fresh[alias]:
            differ = sorted(k for k in derived[alias].keys() | fresh[alias].keys()
                            if derived[alias].get(k) != fresh[alias].get(k))
            problems.append(f"{alias}: {len(differ)} keys differ from a fresh derivation: {differ[:5]}")
    if not derived["vips"] or not derived["dns"]:  # churn scales apps down, never all to nothing
        problems.append(f"vips holds {len(derived['vips'])} VIPs and dns {len(derived['dns'])} sets")
    if problems:
        return problems
    problems += wrong_answers(stack.dns_port, expected_answers(derived["dns"]))
    if stack.netns and not problems:
        problems += [f"kernel differs for {e['protocol']}/{e['ip']}:{e['port']}: topic {e['backends']}, "
                     f"kernel {e['kernel']}" for e in stack.programmed() if not e["programmed"]]
    return problems
