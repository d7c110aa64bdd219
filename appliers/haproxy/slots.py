"""Pre-allocated server slots and the plan from what HAProxy runs to what is desired. Pure.

Every backend has a power-of-two number of `server sN` lines (at least 4). A server keeps its
slot for as long as it exists (matched by its stable name), so a task that comes or goes, a
health flip, draining or an address change touches only its own slot through the runtime
API. A reload is needed only when the config's structure changes: a frontend, backend, rule
or setting, or a backend that needs more slots than it has. Structure is compared as text:
the config rendered with every slot empty (`skeleton`), so anything render puts in the
config outside the server addresses and states counts, and nothing else does.

Capacities never shrink while a backend exists: shrinking would be a reload for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Iterable

import msgspec

from appliers.haproxy.render import (
    Assignment, BackendSlots, SlotState, render, slot_capacity, slot_name, slot_state,
)
from appliers.haproxy.selection import LeftOut, key_of, select, unrenderable
from appliers.haproxy.settings import HaproxySettings
from schemas.haproxy import HealthCheck, Server, Service


@dataclass(frozen=True)
class Applied:
    """What HAProxy runs: the structure its config was rendered with, and who sits in which slot."""

    skeleton: str
    assignment: Assignment
    served: frozenset[str] = frozenset()  # keys of the services the config serves


@dataclass(frozen=True)
class Plan:
    """Either runtime-only (`reload_reason` is None: send `commands`, in order) or a reload
    (render the config from `assignment` and swap it). `commands` are computed for both,
    so a caller whose runtime commands fail can fall back to the reload."""

    reload_reason: str | None
    commands: tuple[str, ...]
    assignment: Assignment
    skeleton: str
    left_out: tuple[LeftOut, ...]
    served: frozenset[str] = frozenset()

    @property
    def reload(self) -> bool:
        return self.reload_reason is not None

    @property
    def converged(self) -> bool:
        return self.reload_reason is None and not self.commands

    def applied(self) -> Applied:
        return Applied(self.skeleton, self.assignment, self.served)


def assign(previous: Assignment, services: Iterable[Service]) -> dict[str, BackendSlots]:
    """The slots of every backend of `services` (already selected): a server stays in its
    slot; new servers take the lowest free slots in name order; a backend grows to the next
    power of two when its servers no longer fit."""
    result: dict[str, BackendSlots] = {}
    for service in services:
        result[service.backend] = _assign_backend(previous.get(service.backend), service.servers)
    return result


def _assign_backend(previous: BackendSlots | None, servers: list[Server]) -> BackendSlots:
    old = previous.servers if previous is not None else ()
    capacity = max(len(old), slot_capacity(len(servers)))
    by_name = {server.name: server for server in servers}
    slots: list[Server | None] = [None] * capacity
    placed: set[str] = set()
    for index, occupant in enumerate(old):
        if occupant is not None and occupant.name in by_name:
            slots[index] = by_name[occupant.name]  # same server, maybe a new address or state
            placed.add(occupant.name)
    free = (index for index, occupant in enumerate(slots) if occupant is None)
    for server in sorted(servers, key=lambda s: s.name):
        if server.name not in placed:
            slots[next(free)] = server
    return BackendSlots(tuple(slots))


def skeleton(services: Iterable[Service], settings: HaproxySettings, assignment: Assignment) -> str:
    """The config with every slot empty: the structure that only a reload can change."""
    empty = {backend: BackendSlots((None,) * slots.capacity) for backend, slots in assignment.items()}
    return render(services, settings, empty).text


def plan(current: Applied | None, desired: Iterable[Service], settings: HaproxySettings) -> Plan:
    """From what HAProxy runs (`current`; None: nothing yet) to `desired`."""
    selection = select(desired, settings)
    previous = current.assignment if current is not None else {}
    assignment = assign(previous, selection.services)
    new_skeleton = skeleton(selection.services, settings, assignment)
    checks = {service.backend: service.health_check for service in selection.services}
    commands = tuple(_runtime_commands(previous, assignment, settings, checks))
    if current is None:
        reason: str | None = "HAProxy runs no config of ours yet"
    elif new_skeleton != current.skeleton:
        reason = _why_structure_changed(previous, assignment)
    else:
        reason = None
    return Plan(reason, commands, assignment, new_skeleton, selection.left_out,
                frozenset(key_of(service) for service in selection.services))


def plan_members(current: Applied, running: Mapping[str, Service], changed: Mapping[str, Service | None],
                 settings: HaproxySettings) -> Plan | None:
    """The runtime-only plan when every changed service differs from the one HAProxy runs
    under its key only in its servers, and they fit its slots: a cost in the changed services,
    not in the whole config. None when that is not so: then `plan` the whole config.

    `running`: the services the config was planned from, by key; `changed`: the new value of
    each changed key (None: gone)."""
    assignment = dict(current.assignment)
    commands: list[str] = []
    for key, new in changed.items():
        old = running.get(key)
        if new is None or old is None or _structure(new) != _structure(old):
            return None
        if key not in current.served:
            if settings.serves_group(new.group) and new.servers != old.servers and not _deduplicated(new, current):
                return None  # left out before: the full plan says whether it still is
            continue  # not this node's group, or another group's record of an app port served
        if unrenderable(new) is not None:
            return None
        slots = assignment[new.backend]
        moved = _assign_backend(slots, new.servers)
        if moved.capacity != slots.capacity:
            return None  # outgrew its slots: a reload
        for index, (was, now) in enumerate(zip(slots.servers, moved.servers)):
            commands += slot_commands(f"{new.backend}/{slot_name(index)}",
                                      slot_state(was, settings, new.health_check),
                                      slot_state(now, settings, new.health_check))
        assignment[new.backend] = moved
    return Plan(None, tuple(commands), assignment, current.skeleton, (), current.served)


def _structure(service: Service) -> Service:
    """Everything but the servers: what only a reload can change."""
    return msgspec.structs.replace(service, servers=[])


def _deduplicated(service: Service, current: Applied) -> bool:
    """Whether a `*` node serves this app port through another group's record."""
    return any(key.split(":", 1)[1] == key_of(service).split(":", 1)[1] for key in current.served)


def _why_structure_changed(previous: Assignment, assignment: Assignment) -> str:
    added = sorted(set(assignment) - set(previous))
    removed = sorted(set(previous) - set(assignment))
    grown = sorted(be for be in assignment if be in previous and assignment[be].capacity > previous[be].capacity)
    parts = []
    if added:
        parts.append("new backends " + ", ".join(added))
    if removed:
        parts.append("removed backends " + ", ".join(removed))
    for backend in grown:
        parts.append(f"backend {backend} outgrew its {previous[backend].capacity} slots")
    return "; ".join(parts) or "frontends, rules or settings changed"


def _runtime_commands(previous: Assignment, assignment: Assignment, settings: HaproxySettings,
                      checks: dict[str, HealthCheck | None]) -> list[str]:
    """The runtime API commands that turn the slots HAProxy has into the desired ones, for
    the backends that exist on both sides and fit in their slots (the rest needs a reload)."""
    commands: list[str] = []
    for backend in sorted(assignment):
        old = previous.get(backend)
        new = assignment[backend]
        if old is None or new.capacity != old.capacity:
            continue
        check = checks.get(backend)  # a changed check is structure: the skeleton differs
        for index, (was, now) in enumerate(zip(old.servers, new.servers)):
            commands += slot_commands(
                f"{backend}/{slot_name(index)}", slot_state(was, settings, check), slot_state(now, settings, check),
            )
    return commands


def slot_commands(target: str, old: SlotState, new: SlotState) -> list[str]:
    """`set server` commands from one slot state to another. Traffic stops first and starts
    last: maintenance before anything else changes, ready after the address and weight."""
    commands: list[str] = []
    if old.ready and not new.ready:
        commands.append(f"set server {target} state maint")
    if (old.ip, old.port) != (new.ip, new.port):
        commands.append(f"set server {target} addr {new.ip} port {new.port}")
    if old.weight != new.weight:
        commands.append(f"set server {target} weight {new.weight}")
    if new.check_port is not None and old.check_port != new.check_port:
        commands.append(f"set server {target} check-port {new.check_port}")
    if new.ready and not old.ready:
        commands.append(f"set server {target} state ready")
    return commands


__all__ = ["Applied", "Plan", "assign", "plan", "plan_members", "skeleton", "slot_commands"]
