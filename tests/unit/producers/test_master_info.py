"""The leader as it advertises itself (GET_MASTER's MasterInfo), never the URL it was reached at."""

from __future__ import annotations

import pytest

from producers.mesos.normalize import master_of_info
from producers.problems import InputRejected


@pytest.mark.parametrize(("info", "expected"), [
    # Mesos 1.x: the address, as the master advertises it (its --advertise_ip / hostname).
    ({"address": {"hostname": "ip-10-0-2-231.internal", "ip": "10.0.2.231", "port": 5050},
      "hostname": "ip-10-0-2-231.internal", "ip": 3875667978, "pid": "master@10.0.2.231:5050", "port": 5050},
     ("ip-10-0-2-231.internal", "10.0.2.231", 5050)),
    # No address: the PID.
    ({"pid": "master@10.0.0.7:5050", "port": 5050}, ("10.0.0.7", "10.0.0.7", 5050)),
    ({"pid": "master@[fd00::1]:5050"}, ("fd00::1", "fd00::1", 5050)),
    # Only the packed IPv4 (little-endian uint32) and the port.
    ({"ip": 3875667978, "port": 5050, "hostname": "m1"}, ("m1", "10.0.2.231", 5050)),
    # A hostname and no IP: the name is kept, the IP stays unknown (names are not resolved).
    ({"address": {"hostname": "master.example", "port": 5050}}, ("master.example", None, 5050)),
])
def test_master_info(info, expected):
    master = master_of_info(info)
    assert (master.hostname, master.ip, master.port) == expected


@pytest.mark.parametrize("info", [None, [], {}, {"hostname": "m1"}, {"address": {"ip": "10.0.0.1"}},
                                  {"address": {"ip": "10.0.0.1", "port": "5050"}}, {"ip": True, "port": 5050}])
def test_master_info_without_an_address_is_refused(info):
    with pytest.raises(InputRejected) as refused:
        master_of_info(info)
    assert refused.value.what == "master"
