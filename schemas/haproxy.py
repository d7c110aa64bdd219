"""L7 services for HAProxy: what every ``haproxy`` node serves, derived from marathon-lb labels.

One record is one service port of one app in one LB group: its frontend settings, its vhost
and path rules and its servers. A task that comes or goes changes only ``servers`` of the
records of its app, so a node can apply it through HAProxy's runtime API without a reload;
any other field is structure (a new frontend, backend or rule) and needs a reload.
"""

from __future__ import annotations

from msgspec import Struct

# The LB group of apps that name none: only a node that serves every group (``*``) serves them.
NO_GROUP = ""


class Server(Struct, frozen=True, gc=False):
    """One task behind a service.

    ``name`` and ``id`` follow marathon-lb (``<host>_<ip>_<port>`` cleaned; sha256 of the
    name mod 32767, re-hashed on collision, never 0), so they stay the same across reloads and
    across nodes. ``draining``: an old blue/green task that gets no new connections.
    """

    name: str
    id: int
    ip: str
    port: int
    task_id: str
    draining: bool = False
    # None: the app has no Marathon health check. Otherwise whether one of the task's
    # health check results is alive (False while it has none). A node with health checking
    # on (the default) serves only servers whose ``healthy`` is not False.
    healthy: bool | None = None
    # The port HAProxy checks instead of ``port`` (this task's port at the index
    # HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX names): None checks ``port`` (or
    # ``HealthCheck.port``).
    check_port: int | None = None


class HealthCheck(Struct, frozen=True, gc=False):
    """HAProxy's check for the servers, mapped from the app's Marathon health check.

    ``kind`` ``http`` sends ``GET path`` (``option httpchk``); ``tcp`` only connects.
    ``fall`` is Marathon's maxConsecutiveFailures + 1; ``port`` checks another port than the
    server's (a check with an explicit port, or BACKEND_HEALTHCHECK_PORT_INDEX).
    """

    kind: str
    interval_s: int = 60
    timeout_s: int = 20
    fall: int = 4
    path: str | None = None
    port: int | None = None


class Auth(Struct, frozen=True, gc=False):
    """HTTP basic authentication (``HAPROXY_{n}_AUTH`` = ``realm:user:crypted-password``)."""

    realm: str
    user: str
    password_hash: str


class Service(Struct, frozen=True, gc=False):
    """One service port of one (logical) app in one LB group.

    Key: ``<group>:<app id>:<service port>`` (``external:/web/frontend:10001``; group ``""``
    for apps without a group). ``backend`` is marathon-lb's backend and per-port frontend name
    (``web_frontend_10001``). ``bind_port`` is the service port, or ``HAPROXY_{n}_PORT``.
    ``vhosts`` are lower-case; ``path`` is the ``path_beg`` argument (words, flags allowed);
    ``weight`` orders vhost rules in the shared frontends, largest first.
    ``network_allowed`` lists the source CIDRs allowed (empty: everyone).
    ``servers`` are sorted by name; an empty list means the port is not served.
    """

    group: str
    app_id: str
    service_port: int
    backend: str
    bind_port: int
    mode: str
    servers: list[Server]
    bind_addr: str = "*"
    bind_options: str | None = None
    balance: str = "roundrobin"
    vhosts: list[str] = []
    path: str | None = None
    weight: int = 0
    sticky: bool = False
    redirect_to_https: bool = False
    use_hsts: bool = False
    auth: Auth | None = None
    ssl_cert: str | None = None
    network_allowed: list[str] = []
    health_check: HealthCheck | None = None
    proxypass_path: str | None = None
    revproxy_path: str | None = None
    redirect_path: str | None = None
    # Extra lines from the documented, validated subset of per-port template labels
    # (never arbitrary HAProxy text): appended to the per-port frontend and to the backend.
    frontend_options: list[str] = []
    backend_options: list[str] = []


def service_key(group: str, app_id: str, service_port: int) -> str:
    return f"{group}:{app_id}:{service_port}"
