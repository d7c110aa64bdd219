"""The shared sanitiser (processors/naming.py) and the DNS name check of the DNS stage."""

from hypothesis import given, settings
from hypothesis import strategies as st

import processors.l4lb.names as l4lb_names
from appliers.dns.records import canonical_name
from processors.dns.names import valid_name
from processors.naming import domain_frag, label


def test_one_sanitiser_serves_every_stage():
    assert l4lb_names.label is label and l4lb_names.domain_frag is domain_frag


def test_single_label_versus_domain_frag():
    """dcos-dns passes a name through ``label`` as one label; Mesos-DNS frameworks and VIP
    names go through ``domain_frag``, which keeps dots and drops slashes."""
    assert label("myapp.mygroup") == "myapp-mygroup"
    assert label("marathon.prod") == "marathon-prod"
    assert domain_frag("marathon.prod") == "marathon.prod"
    assert domain_frag("/mygroup/myapp") == "mygroupmyapp"
    assert label("hello" + "-" * 56 + "f", rfc952=True) == "hellof"


def _canonical_or_none(name: str) -> str | None:
    try:
        return canonical_name(name)
    except ValueError:
        return None


@settings(max_examples=300, derandomize=True)
@given(st.lists(st.text(alphabet="abcXYZ09-_. $", max_size=70), min_size=1, max_size=6))
def test_valid_name_agrees_with_the_zone_validator(labels):
    name = ".".join(labels) + "."
    canonical, why = valid_name(name)
    assert canonical == _canonical_or_none(name)
    assert (why is None) == (canonical is not None)
