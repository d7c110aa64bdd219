"""Overlay configuration (processors/overlay/config.py): the CLI syntax, DC/OS's defaults, and
every rule a configuration must pass, each with a clear error."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from processors.overlay.config import OverlayConfig, overlay, parse_config, parse_overlay


def test_defaults_are_dcos_overlays_and_vtep_ranges():
    config = parse_config()
    assert [o.spec() for o in config.overlays] == ["dcos=9.0.0.0/8,24", "dcos6=fd01:b::/64,80"]
    assert (str(config.vtep), str(config.vtep6), config.grace_s) == ("44.128.0.0/20", "fd01:a::/64", 600.0)
    assert config.overlays[0].capacity == 65536


def test_overlay_syntax_is_name_subnet_comma_prefix():
    parsed = parse_overlay("blue=10.8.0.0/16,26")
    assert (parsed.name, parsed.subnet, parsed.prefix) == ("blue", ip_network("10.8.0.0/16"), 26)
    config = parse_config(["blue=10.8.0.0/16,26", "red=10.9.0.0/16,24"], vtep6="", grace_s=30)
    assert [o.name for o in config.overlays] == ["blue", "red"] and config.vtep6 is None and config.grace_s == 30


@pytest.mark.parametrize("text, message", [
    ("dcos", "expected NAME=SUBNET,PREFIX"),
    ("dcos=9.0.0.0/8/24", "expected NAME=SUBNET,PREFIX"),
    ("dcos=9.0.0.0/8,", "expected NAME=SUBNET,PREFIX"),
    ("Dcos=9.0.0.0/8,24", "1 to 12 characters"),
    ("a-very-long-name=9.0.0.0/8,24", "1 to 12 characters"),
    ("=9.0.0.0/8,24", "1 to 12 characters"),
    ("dcos=9.0.0.1/8,24", "not a network address"),
    ("dcos=nine/8,24", "not a network address"),
    ("dcos=9.0.0.0/8,x", "not a number"),
    ("dcos=9.0.0.0/8,8", "must be longer than the subnet's /8"),
    ("dcos=9.0.0.0/8,30", "no room for two bridges"),
    ("dcos6=fd01:b::/64,126", "no room for two bridges"),
])
def test_a_bad_overlay_is_refused_with_its_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_overlay(text)


def test_the_smallest_overlay_subnet_has_two_halves_of_four_addresses():
    assert overlay("tiny", "10.99.0.0/28", 29).capacity == 2


@pytest.mark.parametrize("overlays, vtep, vtep6, message", [
    (["a=10.0.0.0/16,24", "b=10.0.128.0/17,24"], "44.128.0.0/20", None, "overlay b .* overlaps overlay a"),
    (["a=10.0.0.0/16,24", "a=10.1.0.0/16,24"], "44.128.0.0/20", None, "names must differ"),
    (["a=44.0.0.0/8,24"], "44.128.0.0/20", None, "the VTEP range .* overlaps overlay a"),
    (["a=10.0.0.0/16,24"], "44.0.0.0/7", None, "a VTEP range is /8 to /30"),
    (["a=10.0.0.0/16,24"], "44.128.0.0/31", None, "a VTEP range is /8 to /30"),
    (["a=10.0.0.0/16,24"], "fd01:a::/64", None, "the VTEP range is IPv4"),
    (["a=10.0.0.0/16,24"], "44.128.0.0/20", "10.1.0.0/16", "not an IPv6 range"),
    (["v6=fd01:b::/64,80"], "44.128.0.0/20", None, "needs an IPv6 VTEP range"),
])
def test_a_bad_configuration_is_refused_with_its_reason(overlays, vtep, vtep6, message):
    with pytest.raises(ValueError, match=message):
        parse_config(overlays, vtep, vtep6)


def test_a_negative_grace_is_refused():
    with pytest.raises(ValueError, match="0 seconds or more"):
        OverlayConfig(grace_s=-1)
