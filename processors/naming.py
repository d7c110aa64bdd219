"""DNS label sanitising shared by every name family: Mesos-DNS's label rules and domain_frag.

The rules are Mesos-DNS's (``records/labels/labels.go``), which dcos-net's ``mesos_state``
copies for the names it generates (reference §1.3, §2.3, §3.4):

- map each character: ``A-Z`` -> lower case; ``a-z0-9`` kept; ``-`` ``.`` ``_`` -> ``-``;
  anything else (``/``, ``$``, spaces, non-ASCII) is dropped, not replaced;
- RFC 1123 (default): strip leading ``-``, cut to 63 characters, strip trailing ``-``;
  RFC 952: strip leading ``-`` *and digits*, cut to 24, strip trailing ``-``;
- the cut quirk (``trimCut``): when the cut leaves trailing dashes they are removed and the
  label is refilled from what follows the cut, after skipping that run of dashes
  (RFC 952 of ``hello`` + 56 dashes + ``f`` is ``hellof``). Inner dash runs are kept.

``label`` turns any text into one label (dots become dashes: task names, dcos-dns name parts).
``domain_frag`` splits on ``.``, sanitises every part as one label, drops the parts that come
out empty and joins them with ``.`` again: ``/mygroup/myapp`` -> ``mygroupmyapp``,
``/api.hello-world`` -> ``api.hello-world``, ``marathon.prod`` -> ``marathon.prod``.

One known divergence, on purpose: dcos-net's Erlang ``mesos_state:label`` refills after a cut
by skipping *every* later dash instead of only the run at the cut. The two only differ for
parts longer than 63 characters whose cut falls inside a dash run and whose rest still holds
dashes; we keep Mesos-DNS's result so that one sanitiser serves every zone.
"""

from __future__ import annotations

from functools import lru_cache

_RFC1123 = (63, "-")
_RFC952 = (24, "-0123456789")


def _mapped(text: str) -> str:
    out = []
    for char in text:
        if "A" <= char <= "Z":
            out.append(char.lower())
        elif "a" <= char <= "z" or "0" <= char <= "9":
            out.append(char)
        elif char in "-._":
            out.append("-")
    return "".join(out)


def _trim_cut(text: str, maxlen: int, left: str) -> str:
    """Mesos-DNS ``trimCut``: trim, cut at ``maxlen``, and refill when the cut left dashes."""
    trimmed = text.lstrip(left)
    size = min(len(trimmed), maxlen)
    head = trimmed[:size].rstrip("-")
    if len(head) == size:
        return head
    tail = trimmed[size:].lstrip("-")
    # The refill may itself end in a dash: Mesos-DNS keeps it, and so do we.
    return head + tail[: size - len(head)]


@lru_cache(maxsize=1 << 16)  # names repeat (every instance of an app, every framework)
def label(text: str, rfc952: bool = False) -> str:
    """One DNS label from any text (task name, VIP name part, framework name part)."""
    maxlen, left = _RFC952 if rfc952 else _RFC1123
    return _trim_cut(_mapped(text), maxlen, left)


@lru_cache(maxsize=1 << 14)
def domain_frag(text: str, rfc952: bool = False) -> str:
    """Dotted text as one or more labels: each ``.``-separated part sanitised, empty parts dropped."""
    return ".".join(part for part in (label(p, rfc952) for p in text.split(".")) if part)
