"""Parsing `wayfinder node --haproxy-*` options into settings, with clear errors."""

import pytest

from appliers.haproxy.settings import SharedPorts, parse_groups, parse_ports, parse_settings


def test_defaults_are_marathon_lb_ports_every_group_and_health_checks():
    settings = parse_settings()
    assert settings.ports == SharedPorts(80, 443, 9091, 9090)
    assert settings.groups == ("*",) and settings.health_check
    assert settings.cert_path == "/var/lib/wayfinder/haproxy/self-signed.pem"


def test_ports_are_parsed_by_name_and_missing_names_keep_defaults():
    assert parse_ports("http=8080, stats=19090") == SharedPorts(8080, 443, 9091, 19090)


@pytest.mark.parametrize("text, message", [
    ("http=80,web=81", "'web=81' is not NAME=PORT with NAME one of http, https, appid, stats"),
    ("http", "'http' is not NAME=PORT"),
    ("http=0", "--haproxy-ports http: '0' is not a port from 1 to 65535"),
    ("https=x", "--haproxy-ports https: 'x' is not a port"),
    ("http=80,http=81", "http is given twice"),
    ("http=8080,stats=8080", "http and stats both use port 8080"),
])
def test_bad_ports_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_ports(text)


def test_groups_are_sorted_and_deduplicated():
    assert parse_groups("internal, external,internal") == ("external", "internal")
    with pytest.raises(ValueError, match="at least one group"):
        parse_groups(" , ")
    with pytest.raises(ValueError, match="not a group name"):
        parse_groups("a b")


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="--haproxy-bind"):
        parse_settings(bind="example.com")
    with pytest.raises(ValueError, match="hard-stop-after"):
        parse_settings(hard_stop_after="soon")
    with pytest.raises(ValueError, match="--haproxy-dir"):
        parse_settings(directory="/tmp/a dir")
    assert parse_settings(ssl_cert="/etc/ssl/x.pem").cert_path == "/etc/ssl/x.pem"
