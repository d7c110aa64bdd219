"""The safe subset of marathon-lb's per-port template labels (pure).

marathon-lb lets ``HAPROXY_{n}_<TEMPLATE>`` replace any of 43 per-port templates with raw
HAProxy text. One bad template there breaks the config of every app. Wayfinder supports two
of them, line by line, and refuses the port for any other:

``HAPROXY_{n}_FRONTEND_HEAD`` -> ``Service.frontend_options``;
``HAPROXY_{n}_BACKEND_HEAD`` -> ``Service.backend_options``.

The value is split into lines (CRLF and CR count as LF); blank lines are skipped, and
runs of spaces count as one. The default template's own lines (``frontend {backend}``,
``bind {bindAddr}:{servicePort}{sslCert}{bindOptions}``, ``mode {mode}``; ``backend
{backend}``, ``balance {balance}``, ``mode {mode}``) are accepted and dropped, because
Wayfinder generates them anyway, so a label written for marathon-lb that only adds lines
keeps working. Every other line must be one of:

frontend (``FRONTEND_HEAD``):
  ``timeout client|http-request|http-keep-alive|client-fin <duration>``,
  ``maxconn <1..1000000>``,
  ``[no] option <name>``, name one of ``FRONTEND_OPTIONS``;
backend (``BACKEND_HEAD``):
  ``timeout server|connect|tunnel|queue|check|server-fin <duration>``,
  ``retries <0..100>``, ``http-reuse never|safe|aggressive|always``,
  ``[no] option <name>``, name one of ``BACKEND_OPTIONS``;
both (http mode only):
  ``http-request set-header|add-header <Name> <value>``, ``http-request del-header <Name>``,
  ``http-response set-header|add-header <Name> <value>``, ``http-response del-header <Name>``.

A duration is digits with an optional unit (``us``, ``ms``, ``s``, ``m``, ``h``, ``d``). A
header name is letters, digits and ``-``; a header value is one word of letters, digits and
``._:/,;=+@!*()~?&-``: no spaces, quotes, ``%`` (so no ``%[...]`` sample fetches), ``#``,
braces or backslashes. Lines come out in the canonical form above (one space between words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUPPORTED = {"FRONTEND_HEAD": "frontend", "BACKEND_HEAD": "backend"}

# Every other per-port template marathon-lb knows: a label naming one refuses its port.
REFUSED = frozenset({
    "FRONTEND_BACKEND_GLUE", "BACKEND_HTTP_OPTIONS", "BACKEND_HSTS_OPTIONS", "BACKEND_STICKY_OPTIONS",
    "BACKEND_SERVER_OPTIONS", "BACKEND_HTTP_HEALTHCHECK_OPTIONS", "BACKEND_TCP_HEALTHCHECK_OPTIONS",
    "BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", "BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS",
    "BACKEND_REDIRECT_HTTP_TO_HTTPS", "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
    "HTTP_BACKEND_PROXYPASS_GLUE", "HTTP_BACKEND_REVPROXY_GLUE",
    "HTTP_BACKEND_NETWORK_ALLOWED_ACL", "TCP_BACKEND_NETWORK_ALLOWED_ACL", "USERLIST_HEAD",
    "HTTP_FRONTEND_ACL", "HTTP_FRONTEND_ACL_ONLY", "HTTP_FRONTEND_ACL_WITH_AUTH", "HTTP_FRONTEND_ACL_WITH_PATH",
    "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH", "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH", "HTTP_FRONTEND_ROUTING_ONLY", "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH", "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "HTTP_FRONTEND_APPID_ACL", "HTTPS_FRONTEND_ACL", "HTTPS_FRONTEND_ACL_WITH_PATH", "HTTPS_FRONTEND_ACL_WITH_AUTH",
    "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH", "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH", "HTTPS_FRONTEND_AUTH_ACL_ONLY",
    "HTTPS_FRONTEND_AUTH_REQUEST_ONLY", "HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "MAP_HTTP_FRONTEND_ACL", "MAP_HTTP_FRONTEND_ACL_ONLY", "MAP_HTTP_FRONTEND_APPID_ACL", "MAP_HTTPS_FRONTEND_ACL",
})

FRONTEND_OPTIONS = frozenset({
    "httplog", "tcplog", "dontlognull", "dontlog-normal", "log-separate-errors", "logasap", "forwardfor",
    "http-server-close", "http-keep-alive", "httpclose", "http-buffer-request", "clitcpka", "tcpka",
    "contstats", "socket-stats",
})
BACKEND_OPTIONS = frozenset({
    "forwardfor", "http-server-close", "http-keep-alive", "httpclose", "http-buffer-request",
    "http-pretend-keepalive", "redispatch", "tcpka", "srvtcpka", "abortonclose", "allbackups", "persist",
    "prefer-last-server", "splice-auto", "log-health-checks",
})
# Options HAProxy accepts only in http mode (in tcp mode it warns and ignores them).
HTTP_OPTIONS = frozenset({
    "httplog", "forwardfor", "http-server-close", "http-keep-alive", "httpclose", "http-buffer-request",
    "http-pretend-keepalive",
})
TIMEOUTS = {
    "frontend": frozenset({"client", "http-request", "http-keep-alive", "client-fin"}),
    "backend": frozenset({"server", "connect", "tunnel", "queue", "check", "server-fin"}),
}
DEFAULT_LINES = {
    "frontend": frozenset({"frontend {backend}", "bind {bindAddr}:{servicePort}{sslCert}{bindOptions}",
                           "bind {bindAddr}:{servicePort}{sslCertOptions}", "mode {mode}"}),
    "backend": frozenset({"backend {backend}", "balance {balance}", "mode {mode}"}),
}
MAX_LINES = 64
MAX_VALUE = 8192

_DURATION = re.compile(r"[0-9]{1,9}(?:us|ms|s|m|h|d)?")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_HEADER_VALUE = re.compile(r"[A-Za-z0-9._:/,;=+@!*()~?&-]{1,512}")
_NUMBER = re.compile(r"[0-9]{1,7}")


@dataclass(frozen=True)
class TemplateLines:
    """The directive lines of one template label, and whether one of them needs http mode."""

    lines: tuple[str, ...]
    needs_http: bool


def supported_labels(index: int | str = "n") -> str:
    return " and ".join(f"HAPROXY_{index}_{name}" for name in SUPPORTED)


def template_lines(section: str, value: str) -> TemplateLines | str:
    """The validated lines of a ``frontend`` or ``backend`` template value, or why not."""
    if len(value) > MAX_VALUE:
        return f"is {len(value)} characters long; at most {MAX_VALUE}"
    raw_lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(raw_lines) > MAX_LINES:
        return f"has {len(raw_lines)} lines; at most {MAX_LINES}"
    lines: list[str] = []
    needs_http = False
    for number, raw in enumerate(raw_lines, 1):
        words = raw.split()
        if not words:
            continue
        line = " ".join(words)
        if line in DEFAULT_LINES[section]:
            continue
        why = _line_problem(section, words)
        if why is not None:
            return f"line {number} {line[:80]!r}: {why}"
        needs_http = needs_http or _needs_http(words)
        lines.append(line)
    return TemplateLines(tuple(lines), needs_http)


def _needs_http(words: list[str]) -> bool:
    if words[0] in ("http-request", "http-response"):
        return True
    return words[-2] == "option" and words[-1] in HTTP_OPTIONS if len(words) >= 2 else False


def _line_problem(section: str, words: list[str]) -> str | None:
    head = words[0]
    if any(c in word for word in words for c in "{}"):
        return "template placeholders are supported only in the default head lines"
    if head == "timeout":
        if len(words) != 3 or words[1] not in TIMEOUTS[section] or not _DURATION.fullmatch(words[2]):
            return f"expected 'timeout {'|'.join(sorted(TIMEOUTS[section]))} <duration>'"
        return None
    if head == "option" or (head == "no" and len(words) > 1 and words[1] == "option"):
        allowed = FRONTEND_OPTIONS if section == "frontend" else BACKEND_OPTIONS
        name_at = 1 if head == "option" else 2
        if len(words) != name_at + 1 or words[name_at] not in allowed:
            return f"expected '[no] option <name>' with a name from: {', '.join(sorted(allowed))}"
        return None
    if head in ("http-request", "http-response"):
        return _header_problem(words)
    if section == "frontend" and head == "maxconn":
        return None if len(words) == 2 and _bounded(words[1], 1, 1_000_000) else "expected 'maxconn <1..1000000>'"
    if section == "backend" and head == "retries":
        return None if len(words) == 2 and _bounded(words[1], 0, 100) else "expected 'retries <0..100>'"
    if section == "backend" and head == "http-reuse":
        if len(words) == 2 and words[1] in ("never", "safe", "aggressive", "always"):
            return None
        return "expected 'http-reuse never|safe|aggressive|always'"
    return (f"the directive {head[:40]!r} is not in the supported subset of {section} lines "
            f"(timeout, option, {'maxconn' if section == 'frontend' else 'retries, http-reuse'}, "
            f"http-request/http-response set-header|add-header|del-header)")


def _header_problem(words: list[str]) -> str | None:
    action = words[1] if len(words) > 1 else ""
    if action == "del-header":
        if len(words) == 3 and _HEADER_NAME.fullmatch(words[2]):
            return None
        return f"expected '{words[0]} del-header <Name>' (letters, digits and '-')"
    if action in ("set-header", "add-header"):
        if len(words) != 4 or not _HEADER_NAME.fullmatch(words[2]):
            return f"expected '{words[0]} {action} <Name> <value>', the value one word"
        if not _HEADER_VALUE.fullmatch(words[3]):
            return ("a header value is one word of letters, digits and ._:/,;=+@!*()~?&- "
                    "(no spaces, quotes, '%' or '#')")
        return None
    return f"expected '{words[0]} set-header|add-header|del-header ...'"


def _bounded(text: str, low: int, high: int) -> bool:
    return bool(_NUMBER.fullmatch(text)) and low <= int(text) <= high
