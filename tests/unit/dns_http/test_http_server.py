"""The aiohttp server on loopback (this helper's ports 31100-42199), fetched with aiohttp's
client: every path, its status, content type and body."""

import json

import aiohttp
import pytest

from appliers.dns.http_server import MesosDnsHttpServer
from appliers.dns.mesos_api import MesosDnsConfig, axfr_view, enumerate_view
from schemas.dns import RecordSet, record_set_key
from tests.unit.dns_http.cluster import table

PORT = 31100  # and 31101: a second server with enumeration off
SERIAL = 1764150000


async def fetch(session, url, method="GET"):
    async with session.request(method, url) as response:
        return response.status, response.content_type, await response.read()


async def test_every_path_over_http():
    records = table()
    config = MesosDnsConfig(port=61053, resolvers=("10.0.0.53",))
    async with MesosDnsHttpServer(lambda: records, "127.0.0.1", PORT, config=config,
                                  serial=lambda: SERIAL, version="9.9.9") as server, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        assert server.address[:2] == ("127.0.0.1", PORT)
        base = f"http://127.0.0.1:{PORT}"

        status, ctype, body = await fetch(session, f"{base}/v1/version")
        assert (status, ctype) == (200, "application/json")
        assert body == (b'{"Service":"Wayfinder (Mesos-DNS compatible API)",'
                        b'"URL":"https://github.com/mesosphere/mesos-dns","Version":"9.9.9"}')

        status, ctype, body = await fetch(session, f"{base}/v1/config")
        config_doc = json.loads(body)
        assert (status, ctype) == (200, "application/json")
        assert {k: config_doc[k] for k in ("Port", "HttpPort", "HTTPListener", "Resolvers", "SOASerial",
                                           "EnumerationOn", "Domain")} == {
            "Port": 61053, "HttpPort": PORT, "HTTPListener": "127.0.0.1", "Resolvers": ["10.0.0.53"],
            "SOASerial": SERIAL, "EnumerationOn": True, "Domain": "mesos"}

        status, ctype, body = await fetch(session, f"{base}/v1/hosts/Web.Marathon.Mesos")
        assert (status, ctype) == (200, "application/json")
        assert body == (b'[{"host":"web.marathon.mesos.","ip":"10.0.1.11"},'
                        b'{"host":"web.marathon.mesos.","ip":"10.0.1.12"},'
                        b'{"host":"web.marathon.mesos.","ip":"fd01:b::11"}]')
        assert await fetch(session, f"{base}/v1/hosts/nothing.mesos.") == (
            200, "application/json", b'[{"host":"","ip":""}]')

        assert await fetch(session, f"{base}/v1/hosts/web.marathon.mesos/ports") == (
            501, "text/plain", b"To be implemented...")

        status, ctype, body = await fetch(session, f"{base}/v1/services/_http._web._tcp.marathon.mesos")
        assert (status, ctype) == (200, "application/json")
        assert body == (
            b'[{"service":"_http._web._tcp.marathon.mesos","host":"web-abcde-s1.marathon.mesos.",'
            b'"ip":"10.0.1.11","port":"8080"},'
            b'{"service":"_http._web._tcp.marathon.mesos","host":"web-abcde-s1.marathon.mesos.",'
            b'"ip":"fd01:b::11","port":"8080"}]')
        assert await fetch(session, f"{base}/v1/services/_none._tcp.marathon.mesos") == (
            200, "application/json", b'[{"service":"","host":"","ip":"","port":""}]')

        status, ctype, body = await fetch(session, f"{base}/v1/enumerate")
        assert (status, ctype) == (200, "application/json")
        assert json.loads(body) == enumerate_view(records)
        assert [f["name"] for f in json.loads(body)["frameworks"]] == ["chronos", "marathon"]

        status, ctype, body = await fetch(session, f"{base}/v1/axfr")
        assert (status, ctype) == (200, "application/json")
        axfr = json.loads(body)
        assert axfr == axfr_view(records, server.config, SERIAL)
        assert axfr["Records"]["SRVs"]["_leader._tcp.mesos."] == ["leader.mesos.:5050"]

        # The table is read per request: a new name answers at once.
        added = RecordSet("db.marathon.mesos.", "A", 60, ["10.0.1.30"], "marathon", ["db.1"])
        records[record_set_key(added.name, added.type)] = added
        assert await fetch(session, f"{base}/v1/hosts/db.marathon.mesos") == (
            200, "application/json", b'[{"host":"db.marathon.mesos.","ip":"10.0.1.30"}]')

        assert await fetch(session, f"{base}/v1/nothing") == (404, "text/plain", b"404: Page Not Found")
        assert await fetch(session, f"{base}/v1/hosts") == (404, "text/plain", b"404: Page Not Found")
        async with session.post(f"{base}/v1/version") as response:
            assert (response.status, await response.text()) == (405, "405: Method Not Allowed")
            assert response.headers["Allow"] == "GET"
        assert (await fetch(session, f"{base}/v1/hosts/web.marathon.mesos", "HEAD"))[0] == 405


async def test_enumeration_off_hides_enumerate_and_axfr():
    async with MesosDnsHttpServer(table(), "127.0.0.1", PORT + 1, enumeration=False) as server, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        base = f"http://127.0.0.1:{PORT + 1}"
        assert server.config.enumeration_on is False
        assert await fetch(session, f"{base}/v1/enumerate") == (404, "text/plain", b"404: Page Not Found")
        assert await fetch(session, f"{base}/v1/axfr") == (404, "text/plain", b"404: Page Not Found")
        status, _, body = await fetch(session, f"{base}/v1/config")
        assert (status, json.loads(body)["EnumerationOn"]) == (200, False)
        assert (await fetch(session, f"{base}/v1/hosts/leader.mesos"))[2] == b'[{"host":"leader.mesos.","ip":"10.0.0.1"}]'


async def test_a_taken_port_fails_start_and_leaves_nothing_behind():
    async with MesosDnsHttpServer(table(), "127.0.0.1", PORT + 2):
        second = MesosDnsHttpServer(table(), "127.0.0.1", PORT + 2)
        with pytest.raises(OSError):
            await second.start()
        assert second._runner is None and second._walker is None
