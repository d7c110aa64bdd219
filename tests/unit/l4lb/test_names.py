"""DNS label sanitising (reference §1.3, §2.3, §3.4): Mesos-DNS's label rules and domain_frag."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.l4lb.names import domain_frag, label, vip_dns_name

# Mesos-DNS records/labels/labels_test.go, both label functions.
COMMON = {
    "": "",
    "a": "a",
    "-": "",
    "a---": "a",
    "---a---": "a",
    "---a---b": "a---b",
    "a.b.c.d.e": "a-b-c-d-e",
    "a.c.d_de.": "a-c-d-de",
    "abc123": "abc123",
    "-abc123": "abc123",
    "abc123-": "abc123",
    "abc-123": "abc-123",
    "abc--123": "abc--123",
    "r29f.dev.angrypigs": "r29f-dev-angrypigs",
    "hello" + "-" * 58 + "f": "hellof",  # the cut at 63 lands in the dash run: refilled with "f"
}

RFC1123 = {
    "4abc123": "4abc123",
    "-4abc123": "4abc123",
    "89fdgsf---gs7-fgs--d7fddg-123": "89fdgsf---gs7-fgs--d7fddg-123",
    "89fdgsf---gs7-fgs--d7fddg---123": "89fdgsf---gs7-fgs--d7fddg---123",
    "89fdgsf---gs7-fgs--d7fddg-": "89fdgsf---gs7-fgs--d7fddg",
    "fd%gsf---gs7-f$gs--d7fddg-123": "fdgsf---gs7-fgs--d7fddg-123",  # the §1.3 example
    "fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123": "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891",
    "$$fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-123": "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891",
    "%%fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789---123": "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891",
    "##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-": "fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789",
    "hello" + "-" * 56 + "f": "hello" + "-" * 56 + "f",  # 62 characters: no cut, inner run kept
}

RFC952 = {
    "4abc123": "abc123",
    "-4abc123": "abc123",
    "fd%gsf---gs7-f$gs--d7fddg-123": "fdgsf---gs7-fgs--d7fddg1",
    "89fdgsf---gs7-fgs--d7fddg-123": "fdgsf---gs7-fgs--d7fddg1",
    "89fdgsf---gs7-fgs--d7fddg---123": "fdgsf---gs7-fgs--d7fddg1",
    "89fdgsf---gs7-fgs--d7fddg-": "fdgsf---gs7-fgs--d7fddg",
    "chronos with a space AND MIXED CASE-2.0.1": "chronoswithaspaceandmixe",
    "chronos with a space AND----------MIXED--": "chronoswithaspaceandmixe",
    "hello" + "-" * 56 + "f": "hellof",  # the §1.3 trimCut example
}


@pytest.mark.parametrize(("text", "expected"), sorted({**COMMON, **RFC1123}.items()))
def test_rfc1123_label(text, expected):
    assert label(text) == expected


@pytest.mark.parametrize(("text", "expected"), sorted({**COMMON, **RFC952}.items()))
def test_rfc952_label(text, expected):
    assert label(text, rfc952=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (".", ""),
        ("...", ""),
        ("abc.", "abc"),
        (".a.c", "a.c"),
        ("a..c.e", "a.c.e"),
        ("space space.com", "spacespace.com"),
        ("not$1234.com", "not1234.com"),
        ("(@ host . com", "host.com"),
        ("MiXeDcase.CoM", "mixedcase.com"),
        ("pod_123$abc.marathon-0.6.0-dev.mesos", "pod-123abc.marathon-0.6.0-dev.mesos"),
        ("marathon.prod", "marathon.prod"),
        ("chronos with a space AND MIXED CASE-2.0.1", "chronoswithaspaceandmixedcase-2.0.1"),
        # §3.4: slashes are dropped, not replaced; dots separate labels.
        ("/mygroup/myapp", "mygroupmyapp"),
        ("/api.hello-world", "api.hello-world"),
    ],
)
def test_domain_frag(text, expected):
    assert domain_frag(text) == expected


def test_domain_frag_rfc952_cuts_every_part():
    assert domain_frag("pod_123$abc.marathon-0.6.0-dev.mesos", rfc952=True) == "pod-123abc.marathon-0.dev.mesos"


@pytest.mark.parametrize(
    ("name", "framework", "dns"),
    [
        ("/mygroup/myapp", "marathon", "mygroupmyapp.marathon.l4lb.thisdcos.directory"),
        ("/api.hello-world", "marathon", "api.hello-world.marathon.l4lb.thisdcos.directory"),
        ("broker", "kafka", "broker.kafka.l4lb.thisdcos.directory"),
        ("/web", "marathon.prod", "web.marathon.prod.l4lb.thisdcos.directory"),
        ("/Shop_Front/API", "marathon", "shop-frontapi.marathon.l4lb.thisdcos.directory"),
        ("///", "marathon", None),
        ("/web", "$$$", None),
    ],
)
def test_vip_dns_name(name, framework, dns):
    assert vip_dns_name(name, framework) == dns


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=120))
def test_labels_are_always_valid_dns_labels(text):
    for rfc952, maxlen in ((False, 63), (True, 24)):
        result = label(text, rfc952)
        assert len(result) <= maxlen
        assert set(result) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        assert not result.startswith("-")
        if rfc952:
            assert not result[:1].isdigit()
