"""Marathon's HTTP API: the SSE event bus and the apps endpoints. The I/O seam."""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from producers.documents import MAX_DOCUMENT_BYTES, read_document
from producers.marathon.observer import EVENT_TYPES


class MarathonClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, max_document_bytes: int = MAX_DOCUMENT_BYTES):
        self._session = session
        self.url = URL(url.rstrip("/"))
        self.max_document_bytes = max_document_bytes

    @asynccontextmanager
    async def events(self):
        """The open ``/v2/events`` response, filtered to the event types the producer handles."""
        response = await self._session.get(
            self.url / "v2" / "events",
            params=[("event_type", kind) for kind in EVENT_TYPES],
            headers={"Accept": "text/event-stream"},
            timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5),
        )
        try:
            response.raise_for_status()
            yield response
        finally:
            response.close()

    async def apps(self) -> bytes:
        async with self._session.get(
            self.url / "v2" / "apps", params={"embed": "apps.tasks"}, timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            response.raise_for_status()
            return await read_document(response, "apps", self.max_document_bytes)

    async def app(self, app_id: str) -> bytes | None:
        """``/v2/apps/{id}``; None when Marathon says the app does not exist."""
        async with self._session.get(
            self.url / "v2" / "apps" / app_id.strip("/"), timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return await read_document(response, "app", self.max_document_bytes)
