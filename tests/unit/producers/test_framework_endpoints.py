"""Over SUBSCRIBE, frameworks carry no PID; the schedulers' addresses come from the legacy
/master/frameworks, so `_framework._tcp.<fw>.mesos` is made on the default path too."""

from __future__ import annotations

import time

import orjson
import pytest

from processors.dns.derive import framework_records
from processors.dns.config import DnsConfig
from producers.mesos.normalize import framework_endpoints_of
from producers.problems import InputRejected
from schemas.headers import Observation
from tests.unit.test_mesos_observer import LEADER, new_observer

FRAMEWORKS_DOC = {"frameworks": [
    {"id": "F-0001", "name": "marathon", "pid": "scheduler-1@10.0.0.5:15101"},
    {"id": "F-0002", "name": "v6", "pid": "scheduler(1)@[2001:db8::1]:25501"},
    {"id": "F-0003", "name": "http-api"},  # an HTTP API scheduler: no PID
    "not a framework",
], "completed_frameworks": []}


def v1_framework(framework_id: str, name: str) -> dict:
    return {"framework_info": {"id": {"value": framework_id}, "name": name, "hostname": "sched.example"}, "active": True}


def test_endpoints_are_read_from_the_pids():
    assert framework_endpoints_of(orjson.dumps(FRAMEWORKS_DOC)) == {
        "F-0001": ("10.0.0.5", 15101), "F-0002": ("2001:db8::1", 25501)}
    for bad in (b"{", b"[]"):
        with pytest.raises(InputRejected):
            framework_endpoints_of(bad)


def test_subscribed_frameworks_get_their_scheduler_address_and_keep_it_across_updates():
    sink, observer = new_observer()
    obs = Observation.now()
    subscribed = {"type": "SUBSCRIBED", "subscribed": {"heartbeat_interval_seconds": 15, "get_state": {
        "get_frameworks": {"frameworks": [v1_framework("F-0001", "marathon"), v1_framework("F-0003", "http-api")]}}}}
    observer.on_event(subscribed, LEADER, time.time(), obs)
    assert observer.publisher.tables["frameworks"].get("F-0001").port is None

    observer.on_framework_endpoints(framework_endpoints_of(orjson.dumps(FRAMEWORKS_DOC)), Observation.now())
    marathon = observer.publisher.tables["frameworks"].get("F-0001")
    assert (marathon.ip, marathon.port) == ("10.0.0.5", 15101)
    assert observer.publisher.tables["frameworks"].get("F-0003").port is None
    records = {key: rdata for key, rdata in framework_records(marathon, DnsConfig()).contributions}
    assert records["_framework._tcp.marathon.mesos./SRV"] == ("0 1 15101 marathon.mesos.",)
    assert records["marathon.mesos./A"] == ("10.0.0.5",)

    updated = {"type": "FRAMEWORK_UPDATED", "framework_updated": {"framework": v1_framework("F-0001", "marathon")}}
    observer.on_event(updated, LEADER, time.time(), Observation.now())
    assert observer.publisher.tables["frameworks"].get("F-0001").port == 15101  # an update without a PID keeps it
    resubscribed = {**subscribed, "subscribed": {**subscribed["subscribed"]}}
    observer.on_event(resubscribed, LEADER, time.time(), Observation.now())
    assert observer.publisher.tables["frameworks"].get("F-0001").port == 15101  # and so does a resync
