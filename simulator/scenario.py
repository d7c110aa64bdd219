"""Scenario files: control-API calls replayed in order against a running simulator.

One JSON object per line: {"after": 0.5, "method": "POST", "path": "/sim/apps",
"body": {...}}. `after` is the pause (seconds) after the previous step. Blank lines
and `//` comment lines are skipped.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp

METHODS = ("GET", "POST", "PUT", "DELETE")


@dataclass(frozen=True)
class Step:
    after: float
    method: str
    path: str
    body: Any = None


def parse_scenario(name: str, text: str) -> list[Step]:
    steps = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{name}: line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: malformed JSON: {error.msg}") from None
        if not isinstance(item, dict):
            raise ValueError(f"{where}: each step must be a JSON object")
        after, method, path = item.get("after", 0), str(item.get("method", "")).upper(), item.get("path")
        if not isinstance(after, (int, float)) or isinstance(after, bool) or after < 0:
            raise ValueError(f"{where}: 'after' must be a non-negative number of seconds")
        if method not in METHODS:
            raise ValueError(f"{where}: 'method' must be one of {', '.join(METHODS)}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{where}: 'path' must start with '/'")
        steps.append(Step(float(after), method, path, item.get("body")))
    return steps


async def run_scenario(base_url: str, steps: list[Step],
                       report: Callable[[dict], None] = lambda result: None) -> list[dict]:
    """Run each step against the control API; a failed step is reported, not fatal."""
    results = []
    async with aiohttp.ClientSession() as session:
        for index, step in enumerate(steps):
            await asyncio.sleep(step.after)
            kwargs = {} if step.body is None else {"json": step.body}
            async with session.request(step.method, base_url + step.path, **kwargs) as response:
                text = await response.text()
            try:
                reply = json.loads(text)
            except json.JSONDecodeError:
                reply = text
            result = {"step": index, "method": step.method, "path": step.path,
                      "status": response.status, "reply": reply}
            results.append(result)
            report(result)
    return results
