"""The overlay kernel seam in memory, for tests of the role without root: a NodeState that
operations change as the kernel would, every applied batch kept, and failures on demand."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from appliers.overlay import plan as ops
from appliers.overlay.model import MAIN_TABLE, NodeState


class FakeKernel:
    def __init__(self, state: NodeState | None = None) -> None:
        self.state = state or NodeState()
        self.batches: list[list[ops.KernelOp]] = []  # every applied batch, in order
        self.reads = 0
        self.partial_reads = 0
        self.fail_next = 0  # how many of the next batches to refuse (before any of it applies)

    def read(self) -> NodeState:
        self.reads += 1
        return self._copy(self.state)

    def read_touched(self, touched) -> NodeState | None:
        """Only the touched entries, as the real seam reads them (no table-42 routes, no masquerade)."""
        self.partial_reads += 1
        if self.state.vtep is None:
            return None
        return NodeState(neighbours={k: v for k, v in self.state.neighbours.items() if k in touched.neighbours},
                         fdb={k: v for k, v in self.state.fdb.items() if k in touched.fdb},
                         routes={k: v for k, v in self.state.routes.items() if k in touched.routes and k[0] == MAIN_TABLE})

    def apply(self, operations: Iterable[ops.KernelOp]) -> None:
        operations = list(operations)
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("refused by the fake kernel")
        state = self._copy(self.state)
        for op in operations:
            state = _step(state, op)
        self.state = state
        self.batches.append(operations)

    def close(self) -> None:
        pass

    @staticmethod
    def _copy(state: NodeState) -> NodeState:
        return dataclasses.replace(state, neighbours=dict(state.neighbours), fdb=dict(state.fdb), routes=dict(state.routes))


def _step(state: NodeState, op: ops.KernelOp) -> NodeState:
    replace = dataclasses.replace
    if isinstance(op, ops.CreateVtep):
        # A new device comes without addresses, neighbours, FDB or routes through it.
        return NodeState(op.vtep, frozenset(), {}, {}, {}, state.rules, state.nat)
    if isinstance(op, ops.DeleteVtep):
        return NodeState(None, frozenset(), {}, {}, {}, state.rules, state.nat)
    if isinstance(op, ops.ReplaceNat):
        return replace(state, nat=op.nat)
    if isinstance(op, ops.DeleteNat):
        return replace(state, nat=None)
    if isinstance(op, (ops.AddNatOverlay, ops.DeleteNatOverlay)):
        if state.nat is None:
            raise OSError("the masquerade table is missing")
        cidrs = frozenset(op.cidrs)
        overlay = state.nat.overlay | cidrs if isinstance(op, ops.AddNatOverlay) else state.nat.overlay - cidrs
        return replace(state, nat=replace(state.nat, overlay=overlay))
    if isinstance(op, ops.AddRule):
        return replace(state, rules=state.rules | {(op.src, op.table)})
    if isinstance(op, ops.DeleteRule):
        return replace(state, rules=state.rules - {(op.src, op.table)})
    if state.vtep is None:
        raise OSError(f"vtep1024 is missing: cannot {op}")
    if isinstance(op, ops.SetVtep):
        return replace(state, vtep=op.vtep)
    if isinstance(op, ops.AddAddress):
        return replace(state, addresses=state.addresses | {op.cidr})
    if isinstance(op, ops.DeleteAddress):
        return replace(state, addresses=state.addresses - {op.cidr})
    if isinstance(op, ops.ReplaceNeighbour):
        state.neighbours[op.ip] = op.mac
    elif isinstance(op, ops.DeleteNeighbour):
        state.neighbours.pop(op.ip, None)
    elif isinstance(op, ops.ReplaceFdb):
        state.fdb[op.mac] = op.dst
    elif isinstance(op, ops.DeleteFdb):
        state.fdb.pop(op.mac, None)
    elif isinstance(op, ops.ReplaceRoute):
        state.routes[(op.table, op.dst)] = op.via
    elif isinstance(op, ops.DeleteRoute):
        state.routes.pop((op.table, op.dst), None)
    else:
        raise TypeError(f"unknown operation {op!r}")
    return state
