"""A synthetic Mesos cluster for the processor benchmarks (pure, no I/O).

The shape the throughput issue was measured with: Marathon tasks with one Marathon name, one
discovery port and one named-VIP label each, all tasks of an app behind its app's VIP. Agents
have IPs; backends are the agent's IP and the task's host port (``network-scope: host``), so
every backend is a distinct ip:port.

``churn`` gives the changes a deployment makes: a task of some app is killed and its
replacement launched on another agent and port, so each change moves a DNS address and a
VIP backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from schemas.mesos import Agent, Discovery, DiscoveryPort, Framework, PortRange, Task, TaskStatus

FRAMEWORK_ID = "bench-marathon-0000"
AGENTS = 200
PORT_BASE, PORT_SPAN = 10000, 50000
STARTED_AT = 1764115200.0


@dataclass(frozen=True)
class Workload:
    tasks: int  # how many tasks the cluster holds
    per_app: int  # instances per app (and backends per VIP)

    @property
    def apps(self) -> int:
        return -(-self.tasks // self.per_app)

    def agents(self) -> dict[str, Agent]:
        return {agent_id(a): Agent(id=agent_id(a), hostname=agent_ip(a), ip=agent_ip(a)) for a in range(AGENTS)}

    def frameworks(self) -> dict[str, Framework]:
        return {FRAMEWORK_ID: Framework(id=FRAMEWORK_ID, name="marathon", hostname="10.0.0.1", ip="10.0.0.1",
                                        port=8080)}

    def task(self, index: int, generation: int = 0) -> tuple[str, Task]:
        """Task `index` (its app is index // per_app) in its `generation`-th incarnation, with its
        tasks topic key: each generation has a new id, agent and host port."""
        app = index // self.per_app
        name = f"app{app}"
        slot = index + generation * self.tasks
        agent = slot % AGENTS
        port = PORT_BASE + (slot // AGENTS) % PORT_SPAN
        task_id = f"{name}.{index:07d}-{generation:04d}"
        task = Task(
            id=task_id, name=name, framework_id=FRAMEWORK_ID, agent_id=agent_id(agent), state="TASK_RUNNING",
            statuses=[TaskStatus(state="TASK_RUNNING", timestamp=STARTED_AT + generation)],
            discovery=Discovery(name=name, ports=[DiscoveryPort(
                number=port, protocol="tcp", name="http",
                labels={"VIP_0": f"/{name}:80", "network-scope": "host"})]),
            port_ranges=[PortRange(port, port)])
        return task.key, task

    def initial(self) -> Iterator[tuple[str, Task]]:
        for index in range(self.tasks):
            yield self.task(index)

    def churn(self, changes: int, start: int = 0) -> Iterator[tuple[str, Task | None]]:
        """`changes` changes, in pairs: a kill (tombstone) of task i's current incarnation, then
        its replacement. Tasks are taken round-robin across apps, so every app churns."""
        for n in range(start, start + changes // 2):
            index = self._spread(n)
            generation = n // self.tasks
            yield self.task(index, generation)[0], None
            yield self.task(index, generation + 1)

    def _spread(self, n: int) -> int:
        """The n-th task to replace: app n % apps, its (n // apps)-th instance."""
        app, instance = n % self.apps, (n // self.apps) % self.per_app
        return min(app * self.per_app + instance, self.tasks - 1)


def agent_id(a: int) -> str:
    return f"bench-agent-S{a}"


def agent_ip(a: int) -> str:
    return f"10.1.{a // 250}.{a % 250 + 1}"
