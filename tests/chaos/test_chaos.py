"""Chaos: kill -9 of the producer, the active processor, a standby, the node and a broker, at
random points of a churn, 20 rounds in all, on three real brokers. After every round the
derived topics equal a fresh derivation of the sources, the sources equal the simulated
cluster, and the node answers (and, with root, programs into nftables) exactly that.
"""

from __future__ import annotations

import os
import random
import shutil
import time

import pytest

from tests.chaos.answers import expected_answers, wrong_answers
from tests.chaos.derive import fresh_derivation
from tests.chaos.stack import Stack
from tests.scenarios.mesos_fixtures import FIXTURES

pytestmark = pytest.mark.kafka

ROUNDS = 20
VICTIMS = ("producer", "active processor", "standby processor", "node", "broker")
AGENTS = {"chaos-a1": "10.210.0.1", "chaos-a2": "10.210.0.2", "chaos-a3": "10.210.0.3"}
APPS = 4  # 2 instances each; churn scales them up and down
CHURN_RATE, CHURN_S = 8, 3  # task changes a second, seconds a round
CONVERGE_S = 90.0  # bound for a round's checks to pass once its churn ended
SEED = int(os.environ.get("WAYFINDER_CHAOS_SEED", "0")) or random.randrange(1, 1 << 30)


def _kernel_available() -> bool:
    return os.geteuid() == 0 and shutil.which("nft") is not None and shutil.which("ip") is not None


def _apps() -> list[dict]:
    return [{"id": f"/chaos/app{i}", "instances": 2, "cmd": "sleep 3600",
             "portDefinitions": [{"port": 0, "protocol": "tcp", "labels": {"VIP_0": f"/chaos/app{i}:{8000 + i}"}}]}
            for i in range(APPS)]


@pytest.fixture
def stack(kafka_three, tmp_path):
    running = Stack(kafka_three.bootstrap, tmp_path, FIXTURES / "mesos-state" / "empty.json", processors=2,
                    with_kernel=_kernel_available())
    try:
        running.start()
        running.await_simulator()
        for agent_id, ip in AGENTS.items():
            running.control("POST", "/sim/agents", {"hostname": ip, "id": agent_id, "port_ranges": [[20000, 20999]]})
        for app in _apps():
            running.control("POST", "/sim/apps", app)
        yield running
    finally:
        running.close()


@pytest.mark.timeout(ROUNDS * 60 + 120)
def test_twenty_rounds_of_kill_9_leave_every_table_and_answer_right(stack, kafka_three):
    rng = random.Random(SEED)
    print(f"chaos seed {SEED} (WAYFINDER_CHAOS_SEED reruns it)")
    _assert_converged(stack, "start")
    for round_no in range(ROUNDS):
        victim = VICTIMS[round_no % len(VICTIMS)]
        churn = stack.control("POST", "/sim/churn", {"rate": CHURN_RATE, "seconds": CHURN_S})
        time.sleep(rng.uniform(0.2, CHURN_S - 0.5))
        restart = _kill(stack, kafka_three, victim, rng)
        time.sleep(rng.uniform(0.3, 1.5))
        restart()
        _await_churn(stack, churn["id"])
        converged = time.monotonic()
        _assert_converged(stack, f"round {round_no + 1} ({victim})")
        print(f"round {round_no + 1:2d}: kill -9 {victim:18s} converged {time.monotonic() - converged:5.1f}s after "
              f"the churn ended")


def _kill(stack: Stack, brokers, victim: str, rng: random.Random):
    """SIGKILL the victim now; returns how to bring it back."""
    if victim == "broker":
        node_id = rng.randint(1, 3)
        brokers.kill(node_id)
        return lambda: brokers.start(node_id)
    if victim in ("active processor", "standby processor"):
        active = _await_active(stack)
        process = active if victim == "active processor" else next(
            p for name, p in stack.processes.items() if name.startswith("processor-") and p is not active)
    else:
        process = stack[victim]
    process.kill()
    return process.start


def _await_active(stack: Stack, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = stack.active_processor()
        if active is not None:
            return active
        time.sleep(0.2)
    raise AssertionError(f"no active processor within {timeout}s\n{stack.logs()}")


def _await_churn(stack: Stack, churn_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.control("GET", f"/sim/churn/{churn_id}")["running"]:
        assert time.monotonic() < deadline, "the simulator's churn did not end"
        time.sleep(0.2)


def _assert_converged(stack: Stack, when: str) -> None:
    """Every check, retried until all pass at once or CONVERGE_S runs out (then the last
    failure is the assertion message, with every process's log tail)."""
    deadline = time.monotonic() + CONVERGE_S
    while True:
        problems = _problems(stack)
        if not problems:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{when}: not converged after {CONVERGE_S}s:\n" + "\n".join(problems[:20])
                                 + f"\n{stack.logs()}")
        time.sleep(1.0)


def _problems(stack: Stack) -> list[str]:
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
