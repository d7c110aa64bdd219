"""Hypothesis strategies that break one entity of a real fixture: a field gets a wrong type,
goes missing, or becomes oversized. Used by the parser fuzz tests."""

from __future__ import annotations

import copy

from hypothesis import strategies as st

OVERSIZE = "x" * (1024 * 1024)  # over the 900 KiB record limit on its own

# Values JSON can carry (what a master or Marathon could send): 64-bit integers, finite floats.
WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
    st.just(OVERSIZE),
)


def paths_of(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (dict keys and list indexes) inside a JSON value, the value itself excluded."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append(prefix + (key,))
            found += paths_of(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append(prefix + (index,))
            found += paths_of(item, prefix + (index,))
    return found


def mutated(entity: dict, path: tuple, action: str, wrong: object) -> dict:
    """A copy of ``entity`` with the value at ``path`` replaced by ``wrong`` or deleted."""
    broken = copy.deepcopy(entity)
    holder = broken
    for step in path[:-1]:
        holder = holder[step]
    if action == "delete":
        del holder[path[-1]]
    else:
        holder[path[-1]] = wrong
    return broken


@st.composite
def breakage(draw, entity: dict):
    """(path, action, value) that breaks one field of ``entity``."""
    path = draw(st.sampled_from(paths_of(entity)))
    action = draw(st.sampled_from(["replace", "delete"]))
    return path, action, draw(WRONG_VALUES)
