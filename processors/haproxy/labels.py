"""The marathon-lb label language, parsed and validated (pure; never raises).

Only app-level ``labels`` are read, as marathon-lb does (portMapping and portDefinition
labels are not). App-level labels:

- ``HAPROXY_GROUP``: comma-separated LB groups; none (or empty): ``NO_GROUP``;
- ``HAPROXY_DEPLOYMENT_GROUP``, ``_ALT_PORT``, ``_COLOUR``, ``_STARTED_AT``,
  ``_TARGET_INSTANCES``, ``_NEW_INSTANCES``: blue/green pairing (services.py merges);
  ``HAPROXY_APP_ID`` is informational.

Values are validated in values.py. Per service port n (its position in the app's service ports), ``HAPROXY_{n}_``: GROUP,
ENABLED, VHOST, PATH, MODE, PORT, BIND_ADDR, BIND_OPTIONS, BALANCE, STICKY,
REDIRECT_TO_HTTPS, USE_HSTS, BACKEND_WEIGHT, AUTH, SSL_CERT, BACKEND_NETWORK_ALLOWED_ACL,
BACKEND_HEALTHCHECK_PORT_INDEX, HTTP_BACKEND_PROXYPASS_PATH, HTTP_BACKEND_REVPROXY_PATH,
HTTP_BACKEND_REDIR, and the template subset of templates.py (FRONTEND_HEAD, BACKEND_HEAD).

marathon-lb's defaults and boolean rule hold (``true``, ``t``, ``yes``, ``y`` in any case
are true, anything else false). Unlike marathon-lb, every other value is validated: a bad
per-port value refuses only its port, a bad app-level value the whole app, each with a
precise reason (a ``Rejection``), and nothing can inject HAProxy configuration. Per-port
labels of an index the app has no port for, and ``HAPROXY_`` names marathon-lb does not
know, are ignored as marathon-lb ignores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from processors.haproxy import templates
from processors.haproxy.values import (
    MAX_WEIGHT, Invalid, auth, balance, bind_address, bind_options, group_list, integer, mode, networks, path_rule,
    single_path, ssl_cert, vhost_list,
)
from schemas.haproxy import Auth

TRUE_WORDS = frozenset({"true", "t", "yes", "y"})
SETTINGS = frozenset({
    "GROUP", "ENABLED", "VHOST", "PATH", "MODE", "PORT", "BIND_ADDR", "BIND_OPTIONS", "BALANCE", "STICKY",
    "REDIRECT_TO_HTTPS", "USE_HSTS", "BACKEND_WEIGHT", "AUTH", "SSL_CERT", "BACKEND_NETWORK_ALLOWED_ACL",
    "BACKEND_HEALTHCHECK_PORT_INDEX", "HTTP_BACKEND_PROXYPASS_PATH", "HTTP_BACKEND_REVPROXY_PATH",
    "HTTP_BACKEND_REDIR",
})
MAX_PORT_INDEX = 1000  # ports of one app; labels of a higher index are ignored
MAX_LABEL_VALUE = 8192

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PER_PORT = re.compile(r"HAPROXY_([0-9]{1,4})_([A-Z0-9_]+)")
_DEPLOYMENT_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,64}(?:/[A-Za-z0-9_.-]{1,64}){0,8}")


class Rejection(NamedTuple):
    """What could not be used, and why. ``port_index`` -1: the whole app."""

    app_id: str
    port_index: int
    label: str
    value: str
    why: str


@dataclass(frozen=True)
class Deployment:
    """The blue/green labels of an app (``HAPROXY_DEPLOYMENT_*``)."""

    group: str
    started_at: datetime | None = None
    target_instances: int | None = None
    new_instances: int = 0
    alt_port: int | None = None
    colour: str | None = None


@dataclass(frozen=True)
class AppLabels:
    groups: tuple[str, ...]
    deployment: Deployment | None


@dataclass(frozen=True)
class PortLabels:
    """The validated labels of one service port, with marathon-lb's defaults. ``mode`` None:
    decided with the health check (services.py); ``groups`` None: the app's groups."""

    groups: tuple[str, ...] | None = None
    enabled: bool | None = None  # None: not set (enabled unless in strict mode)
    vhosts: tuple[str, ...] = ()
    path: str | None = None
    mode: str | None = None
    port: int | None = None
    bind_addr: str = "*"
    bind_options: str | None = None
    balance: str = "roundrobin"
    sticky: bool = False
    redirect_to_https: bool = False
    use_hsts: bool = False
    weight: int = 0
    auth: Auth | None = None
    ssl_cert: str | None = None
    network_allowed: tuple[str, ...] = ()
    healthcheck_port_index: int | None = None
    proxypass_path: str | None = None
    revproxy_path: str | None = None
    redirect_path: str | None = None
    frontend_options: tuple[str, ...] = ()
    backend_options: tuple[str, ...] = ()
    http_only_label: str | None = None  # a template label with lines that need mode http


def is_true(value: str) -> bool:
    return value.strip().lower() in TRUE_WORDS


# -- app level ---------------------------------------------------------------------------
def app_labels(app_id: str, labels: dict[str, str]) -> tuple[AppLabels | None, list[Rejection]]:
    """The app-level labels, or None and every reason the app is refused."""
    problems: list[Rejection] = []

    def refuse(label: str, why: str) -> None:
        problems.append(Rejection(app_id, -1, label, labels.get(label, "")[:200], why))

    groups = group_list(labels.get("HAPROXY_GROUP", ""))
    if isinstance(groups, Invalid):
        refuse("HAPROXY_GROUP", groups.why)
    deployment = deployment_of(labels)
    if isinstance(deployment, tuple):
        refuse(*deployment)
    if problems:
        return None, problems
    return AppLabels(groups, deployment), []


def deployment_group_of(labels: dict[str, str]) -> str | None:
    """The app's deployment group if it names a valid one (what the table groups apps by)."""
    value = labels.get("HAPROXY_DEPLOYMENT_GROUP", "").strip().strip("/")
    return value if _DEPLOYMENT_GROUP.fullmatch(value) else None


def deployment_of(labels: dict[str, str]) -> Deployment | None | tuple[str, str]:
    """The blue/green labels, None without a deployment group, or (label, why)."""
    if "HAPROXY_DEPLOYMENT_GROUP" not in labels:
        return None
    group = deployment_group_of(labels)
    if group is None:
        return ("HAPROXY_DEPLOYMENT_GROUP", "a deployment group is '/'-separated words of letters, digits, "
                "'_', '.' or '-'")
    fields: dict[str, object] = {}
    for label, name, low in (("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "target_instances", 0),
                             ("HAPROXY_DEPLOYMENT_NEW_INSTANCES", "new_instances", 0),
                             ("HAPROXY_DEPLOYMENT_ALT_PORT", "alt_port", 1)):
        if label in labels:
            number = integer(labels[label], low, 65535 if name == "alt_port" else 1_000_000)
            if isinstance(number, Invalid):
                return (label, number.why)
            fields[name] = number
    if "HAPROXY_DEPLOYMENT_STARTED_AT" in labels:
        try:
            started = datetime.fromisoformat(labels["HAPROXY_DEPLOYMENT_STARTED_AT"].strip().replace("Z", "+00:00"))
        except ValueError:
            return ("HAPROXY_DEPLOYMENT_STARTED_AT", "is not an ISO 8601 date and time")
        # Compared as UTC; a time without a zone (what zdd.py writes) is taken as UTC.
        fields["started_at"] = started if started.tzinfo is None else \
            started.astimezone(timezone.utc).replace(tzinfo=None)
    colour = labels.get("HAPROXY_DEPLOYMENT_COLOUR")
    if colour is not None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", colour.strip()):
            return ("HAPROXY_DEPLOYMENT_COLOUR", "a colour is one word (blue, green)")
        fields["colour"] = colour.strip()
    return Deployment(group, **fields)


# -- per port ----------------------------------------------------------------------------
def labels_by_port(labels: dict[str, str]) -> dict[int, dict[str, str]]:
    """Per-port labels by port index, each by its name without ``HAPROXY_{n}_``."""
    ports: dict[int, dict[str, str]] = {}
    for key, value in labels.items():
        match = _PER_PORT.fullmatch(key)
        if match is not None and int(match.group(1)) < MAX_PORT_INDEX:
            ports.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return ports


def port_labels(app_id: str, index: int, labels: dict[str, str], port_count: int) -> tuple[PortLabels | None, list[Rejection]]:
    """The settings of port `index` from its labels (``labels_by_port(...)[index]``), or None
    and every reason the port is refused."""
    problems: list[Rejection] = []
    fields: dict[str, object] = {}
    for name in sorted(labels):
        value = labels[name]
        label = f"HAPROXY_{index}_{name}"
        if len(value) > MAX_LABEL_VALUE:
            problems.append(Rejection(app_id, index, label, value[:200], f"is over {MAX_LABEL_VALUE} characters"))
            continue
        if name not in templates.SUPPORTED and _CONTROL.search(value):
            problems.append(Rejection(app_id, index, label, value[:200],
                                      "holds a line break or another control character"))
            continue
        if name in templates.SUPPORTED:
            parsed = templates.template_lines(templates.SUPPORTED[name], value)
            if isinstance(parsed, str):
                problems.append(Rejection(app_id, index, label, value[:200], parsed))
            else:
                fields[f"{templates.SUPPORTED[name]}_options"] = parsed.lines
                if parsed.needs_http and fields.get("http_only_label") is None:
                    fields["http_only_label"] = label
            continue
        if name in templates.REFUSED:
            problems.append(Rejection(app_id, index, label, value[:200],
                                      f"template overrides are limited to a safe subset: only "
                                      f"{templates.supported_labels(index)} are supported (see the README)"))
            continue
        if name not in SETTINGS:
            continue
        why = _setting(name, value, fields, port_count)
        if why is not None:
            problems.append(Rejection(app_id, index, label, value[:200], why))
    if problems:
        return None, problems
    if fields.get("path") is not None and not fields.get("weight"):
        fields["weight"] = 1  # marathon-lb: PATH bumps a weight still 0 to 1
    return PortLabels(**fields), []


def _setting(name: str, value: str, fields: dict[str, object], port_count: int) -> str | None:
    """Store the setting `name` in `fields`; return why it is refused, or None."""
    text = value.strip()
    if name in ("ENABLED", "STICKY", "REDIRECT_TO_HTTPS", "USE_HSTS"):
        fields[{"ENABLED": "enabled", "STICKY": "sticky", "REDIRECT_TO_HTTPS": "redirect_to_https",
                "USE_HSTS": "use_hsts"}[name]] = is_true(text)
        return None
    if name == "AUTH":
        parsed = auth(value)
    elif name == "BACKEND_HEALTHCHECK_PORT_INDEX":
        parsed = integer(text, 0, max(port_count - 1, 0))
        if isinstance(parsed, Invalid):
            return f"{parsed.why} (a port index of this app, which has {port_count} service ports)"
    else:
        parsed = _PARSERS.get(name, single_path)(text)
    if isinstance(parsed, Invalid):
        return parsed.why
    fields[_FIELDS[name]] = parsed
    return None


_PARSERS = {
    "GROUP": group_list, "VHOST": vhost_list, "PATH": path_rule, "MODE": mode,
    "PORT": lambda text: integer(text, 1, 65535), "BIND_ADDR": bind_address, "BIND_OPTIONS": bind_options,
    "BALANCE": balance, "BACKEND_WEIGHT": lambda text: integer(text, -MAX_WEIGHT, MAX_WEIGHT),
    "SSL_CERT": ssl_cert, "BACKEND_NETWORK_ALLOWED_ACL": networks,
}  # AUTH and BACKEND_HEALTHCHECK_PORT_INDEX are read in _setting; the rest are single paths
_FIELDS = {
    "GROUP": "groups", "VHOST": "vhosts", "PATH": "path", "MODE": "mode", "PORT": "port", "BIND_ADDR": "bind_addr",
    "BIND_OPTIONS": "bind_options", "BALANCE": "balance", "BACKEND_WEIGHT": "weight", "AUTH": "auth",
    "SSL_CERT": "ssl_cert", "BACKEND_NETWORK_ALLOWED_ACL": "network_allowed",
    "BACKEND_HEALTHCHECK_PORT_INDEX": "healthcheck_port_index", "HTTP_BACKEND_PROXYPASS_PATH": "proxypass_path",
    "HTTP_BACKEND_REVPROXY_PATH": "revproxy_path", "HTTP_BACKEND_REDIR": "redirect_path",
}
