"""Golden haproxy.cfg for every shared Marathon app document, the whole way: the document
through the Marathon normalizer and the HAProxy table (the records golden-checked in
tests/unit/haproxy_derive/), then rendered for a node that serves every group.

``golden/fixtures/<document>.cfg`` holds the config after the fixed head (see conftest's
``tail``); ``WAYFINDER_UPDATE_GOLDEN=1`` rewrites it. Each config also passes a real
``haproxy -c`` without a warning.
"""

from __future__ import annotations

import msgspec
import pytest

from appliers.haproxy.render import render
from schemas.haproxy import Service
from tests.unit.haproxy_derive.test_fixtures import DOCUMENTS, derived_of, golden_name
from tests.unit.haproxy_render.conftest import SETTINGS, golden, tail


def services_of(document) -> list[Service]:
    derived = derived_of(document)["services"]
    return [msgspec.convert(derived[key], Service) for key in sorted(derived)]


@pytest.mark.parametrize("document", DOCUMENTS, ids=golden_name)
def test_fixture_config_matches_golden_and_passes_haproxy_check(document, valid):
    services = services_of(document)
    rendered = render(services, SETTINGS, {})
    assert rendered.left_out == ()
    name = "fixtures/" + golden_name(document).removesuffix(".json") + ".cfg"
    assert tail(rendered.text) == golden(name, tail(rendered.text))
    valid(services)


def test_a_marathon_15_bridge_app_is_served_at_its_agent_ip_and_host_port_by_vhost():
    """marathon15_apps.json (marathon-lb's own bridge-app case): the server is the agent IP and
    the task's host port, never the container port; the vhost routes on :80 and by SNI."""
    (service,) = services_of(next(d for d in DOCUMENTS if d.name == "marathon15_apps.json"))
    assert (service.app_id, service.service_port, service.vhosts) == ("/pywebserver", 10101, ["myvhost.com"])
    assert [(s.ip, s.port) for s in service.servers] == [("10.0.2.148", 1565)]
    text = render([service], SETTINGS, {}).text
    assert "  acl host_pywebserver_10101 hdr(host),field(1,:) -i myvhost.com\n" in text
    assert "  use_backend pywebserver_10101 if { ssl_fc_sni -i myvhost.com }\n" in text
    assert "  server s1 10.0.2.148:1565\n" in text
