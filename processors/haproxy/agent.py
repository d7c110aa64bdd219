"""The HAProxy processor stage: Marathon apps and tasks, and Mesos agents, in; ``haproxy``
service records out. HaproxyTable does the deriving; `processors.stage.Stage` does the
batching, publishing and rejections. A refused port or app is reported once in
``rejections`` (source ``haproxy``) with the label, its value and the reason; every other
app keeps being derived and published.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.haproxy.labels import Rejection
from processors.haproxy.services import DEFAULTS, Options
from processors.haproxy.table import HaproxyTable
from processors.stage import Source, Stage, Update
from schemas.marathon import App, AppTask
from schemas.mesos import Agent

SOURCES = {
    "apps": Source(App, "app"),
    "app-tasks": Source(AppTask, "app_task"),
    "agents": Source(Agent, "agent"),
}


def described(rejection: Rejection) -> str:
    """What a rejection refused: the app, or one port of it (and the label, if one)."""
    subject = f"app {rejection.app_id}" if rejection.port_index < 0 else \
        f"port index {rejection.port_index} of app {rejection.app_id}"
    return f"HAProxy label {rejection.label} of {subject}" if rejection.label else f"HAProxy {subject}"


class HaproxyStage(Stage):
    name = "haproxy"
    output = "haproxy"
    sources = SOURCES

    def __init__(self, catalog, options: Options | None = None):
        super().__init__(catalog)
        self.options = options or DEFAULTS

    def new_table(self, published) -> HaproxyTable:
        return HaproxyTable(self.options)

    def rejected(self, updates: list[Update], changes) -> Iterable[tuple[str, str, object]]:
        return [(described(r), r.why, f"{r.label}={r.value}" if r.label else r.value)
                for r in self.table.take_rejections()]
