"""Reading a whole HTTP document (``/master/state``, ``/v2/apps``) within a size bound.

A master or a proxy in front of it can send a body of any size; read unbounded, one such
reply would take all the producer's memory. The bound is checked against Content-Length
first, then while the body streams in.
"""

from __future__ import annotations

import aiohttp

from producers.problems import InputRejected

# Far above a real cluster's state (a 10,000-task master state is some tens of MB).
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


async def read_document(response: aiohttp.ClientResponse, what: str, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The whole body, or InputRejected(``what``) once it is known to exceed ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise InputRejected(what, f"the reply declares {declared:,} bytes, over the {limit:,}-byte document limit")
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise InputRejected(what, f"the reply grew past the {limit:,}-byte document limit", bytes(body[:200]))
    return bytes(body)
