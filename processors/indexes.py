"""Reverse indexes of the pure tables (owner -> its members), kept without empty entries."""

from __future__ import annotations


def unindex(index: dict[str, set[str]], owner: str, member: str) -> None:
    """Take `member` out of `owner`'s set, and the set out of the index once it is empty:
    an index that kept every agent or app that ever had a member would only grow."""
    members = index.get(owner)
    if members is not None:
        members.discard(member)
        if not members:
            del index[owner]
