"""The HAProxy processor stage: Marathon apps and tasks in, ``haproxy`` service records out.

- labels.py / templates.py: the marathon-lb label language, parsed and validated (pure);
- ports.py: service ports and task addresses, as marathon-lb resolves them (pure);
- services.py: one logical app (an app, or a blue/green deployment group) -> its records;
- table.py: the incremental table the stage runs; agent.py: the stage.
"""
