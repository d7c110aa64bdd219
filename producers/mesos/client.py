"""The Mesos master's HTTP API: SUBSCRIBE, GET_STATE and ``/master/state``. The I/O seam.

Only the leading master serves the operator API; the others answer 307 with the leader's
location (sometimes scheme-relative, ``//host:5050/api/v1``). Redirects are followed here,
by hand, so the producer talks to the leader. Who the leader *is* comes from the leader itself
(``GET_MASTER``'s advertised address, or the state's ``leader`` PID), never from the URL: that
is often a load balancer, a DNS name, a tunnel or a port forward.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
import orjson
from yarl import URL

from producers.documents import MAX_DOCUMENT_BYTES, read_document
from producers.mesos.normalize import master_of_info
from producers.problems import InputRejected
from schemas.mesos import Master

MAX_REDIRECTS = 5


class SubscribeUnsupported(Exception):
    """The master answered SUBSCRIBE with a status that says it does not speak it."""


MAX_MASTER_INFO_BYTES = 1 << 20


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
        """Yields (leading master as it advertises itself, streaming response) of a SUBSCRIBE
        call. The master is asked with GET_MASTER at the URL that accepted the SUBSCRIBE."""
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
                leader = await self._get_master(target)
                yield leader, response
            finally:
                response.close()
            return
        raise aiohttp.ClientError(f"more than {MAX_REDIRECTS} redirects from {self.url}")

    async def _get_master(self, target: URL) -> Master:
        """GET_MASTER at `target` (no redirect: a master that stopped leading in between makes
        the caller reconnect). Raises on any failure: a leader it cannot name is no leader."""
        async with self._session.post(target, json={"type": "GET_MASTER"}, headers={"Accept": "application/json"},
                                      allow_redirects=False, timeout=aiohttp.ClientTimeout(total=10)) as response:
            response.raise_for_status()
            body = await read_document(response, "get-master", MAX_MASTER_INFO_BYTES)
        try:
            info = orjson.loads(body)["get_master"]["master_info"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise InputRejected("get-master", "GET_MASTER's reply holds no get_master.master_info", body[:200]) from None
        return master_of_info(info)

    async def master_state(self) -> bytes:
        """The body of /master/state, from the leader (the document names the leader itself)."""
        return await self._legacy_document("state", "master-state", self.max_document_bytes)

    async def master_frameworks(self) -> bytes:
        """The body of /master/frameworks, from the leader: the schedulers' PIDs."""
        return await self._legacy_document("frameworks", "master-frameworks", self.max_document_bytes)

    async def _legacy_document(self, endpoint: str, what: str, limit: int) -> bytes:
        target = self.url / "master" / endpoint
        for _ in range(MAX_REDIRECTS + 1):
            async with self._session.get(target, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=30)) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    target = _follow(target, response.headers["Location"])
                    continue
                response.raise_for_status()
                return await read_document(response, what, limit)
        raise aiohttp.ClientError(f"more than {MAX_REDIRECTS} redirects from {self.url}")
