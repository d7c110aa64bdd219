"""The Mesos master's HTTP API: SUBSCRIBE, GET_STATE and ``/master/state``. The I/O seam.

Only the leading master serves the operator API; the others answer 307 with the leader's
location (sometimes scheme-relative, ``//host:5050/api/v1``). Redirects are followed here,
by hand, so the producer knows which master leads.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from producers.documents import MAX_DOCUMENT_BYTES, read_document
from producers.mesos.normalize import ip_or_none
from schemas.mesos import Master

MAX_REDIRECTS = 5


class SubscribeUnsupported(Exception):
    """The master answered SUBSCRIBE with a status that says it does not speak it."""


def leader_of(url: URL) -> Master:
    return Master(hostname=url.host or "", ip=ip_or_none(url.host), port=url.port or 5050)


def _follow(base: URL, location: str) -> URL:
    target = URL(location)
    if location.startswith("//"):
        target = URL(f"{base.scheme}:{location}")
    return base.join(target) if not target.is_absolute() else target


class MesosClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, max_document_bytes: int = MAX_DOCUMENT_BYTES):
        self._session = session
        self.url = URL(url.rstrip("/"))
        self.max_document_bytes = max_document_bytes

    @asynccontextmanager
    async def subscribe(self):
        """Yields (leading master, streaming response) of a SUBSCRIBE call."""
        target = self.url / "api" / "v1"
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._session.post(
                target,
                json={"type": "SUBSCRIBE"},
                headers={"Accept": "application/json"},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5),
            )
            if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                target = _follow(target, response.headers["Location"])
                response.release()
                continue
            if response.status in (404, 405, 501):
                response.release()
                raise SubscribeUnsupported(f"SUBSCRIBE answered {response.status}")
            if response.status != 200:
                text = (await response.text())[:200]
                response.release()
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=f"SUBSCRIBE failed: {text}"
                )
            try:
                yield leader_of(target), response
            finally:
                response.close()
            return
        raise aiohttp.ClientError(f"more than {MAX_REDIRECTS} redirects from {self.url}")

    async def master_state(self) -> tuple[Master, bytes]:
        """(the master that answered, body of /master/state)."""
        target = self.url / "master" / "state"
        for _ in range(MAX_REDIRECTS + 1):
            async with self._session.get(target, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=30)) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    target = _follow(target, response.headers["Location"])
                    continue
                response.raise_for_status()
                return leader_of(target), await read_document(response, "master-state", self.max_document_bytes)
        raise aiohttp.ClientError(f"more than {MAX_REDIRECTS} redirects from {self.url}")
