"""A synthetic Marathon-like cluster for the DNS table's cost measurements.

``python -m tests.unit.dns_derive.synthetic [tasks] [agents] [frameworks] [instances]`` prints,
as JSON, how long a cold rebuild takes (``put_many`` of everything), how long one task
change takes afterwards, and the size of the table. The unit test runs a small size.
"""

from __future__ import annotations

import json
import sys
import time

from processors.dns.table import DnsTable
from schemas.mesos import Agent, Cluster, Discovery, DiscoveryPort, Framework, Master, NetworkInfo, PortRange, Task, TaskStatus


def cluster(tasks: int, agents: int, frameworks: int, instances: int) -> tuple[list[tuple[str, str, object]], list[Task]]:
    """Updates for the whole cluster (agents, frameworks, cluster, then tasks) and the tasks.

    Tasks come in apps of ``instances`` (one DNS name with that many addresses), spread over
    the agents; every other app runs on an overlay network (its own container IP).
    """
    updates: list[tuple[str, str, object]] = []
    agent_list = [Agent(id=f"a-S{n}", hostname=f"10.1.{n // 250}.{n % 250 + 1}", ip=f"10.1.{n // 250}.{n % 250 + 1}") for n in range(agents)]
    framework_list = [Framework(id=f"f-{n:04d}", name=f"marathon-{n}", hostname="10.0.0.1", ip="10.0.0.1", port=8080) for n in range(frameworks)]
    masters = [Master(hostname=f"10.0.0.{n}", ip=f"10.0.0.{n}") for n in (1, 2, 3)]
    updates += [("agent", a.id, a) for a in agent_list]
    updates += [("framework", f.id, f) for f in framework_list]
    updates.append(("cluster", "cluster", Cluster(leader=masters[0], masters=masters)))
    task_list = []
    for n in range(tasks):
        app, instance = divmod(n, instances)
        agent = agent_list[n % agents]
        framework = framework_list[app % frameworks]
        name = f"app{app}.group{app % 7}"
        port = 20000 + n % 10000
        overlay = app % 2 == 1
        ip = f"9.{n // 65536}.{(n // 256) % 256}.{n % 256}" if overlay else agent.ip
        status = TaskStatus(state="TASK_RUNNING", timestamp=1.0, network_infos=[NetworkInfo(name="dcos" if overlay else None, ip_addresses=[ip])])
        task_list.append(
            Task(
                id=f"{name}.{instance}-{n}",
                name=name,
                framework_id=framework.id,
                agent_id=agent.id,
                state="TASK_RUNNING",
                statuses=[status],
                discovery=Discovery(name=name, ports=[DiscoveryPort(number=port, protocol="tcp", name="http")]),
                port_ranges=[] if overlay else [PortRange(port, port)],
            )
        )
    updates += [("task", t.id, t) for t in task_list]
    return updates, task_list


def measure(tasks: int, agents: int, frameworks: int, instances: int) -> dict:
    updates, task_list = cluster(tasks, agents, frameworks, instances)
    table = DnsTable()
    started, cpu = time.perf_counter(), time.process_time()
    table.put_many(updates)
    rebuild, rebuild_cpu = time.perf_counter() - started, time.process_time() - cpu
    moved = task_list[len(task_list) // 2]
    killed = Task(**{**{f: getattr(moved, f) for f in moved.__struct_fields__}, "state": "TASK_KILLED"})
    started = time.perf_counter()
    changes = table.put_task(moved.id, killed)
    one_change = time.perf_counter() - started
    return {
        "tasks": tasks,
        "agents": agents,
        "frameworks": frameworks,
        "instances_per_app": instances,
        "rebuild_seconds": round(rebuild, 2),
        "rebuild_cpu_seconds": round(rebuild_cpu, 2),
        "one_task_change_ms": round(one_change * 1000, 2),
        "record_sets_changed_by_it": len(changes),
        "record_sets": len(table.records),
    }


if __name__ == "__main__":
    sizes = [int(arg) for arg in sys.argv[1:]] or [100_000, 200, 20, 20]
    print(json.dumps(measure(*sizes)))
