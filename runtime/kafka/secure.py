"""A secured local cluster (`wayfinder kafka up --secure`): TLS, SASL/SCRAM users, the authorizer.

Layout, all inside `DIR/secrets/` (mode 0700; every file with a secret in it 0600):
- `ca.pem` (public) and `ca.key`: the cluster's private CA; clients trust only it.
- `broker.p12`: the brokers' key and certificate (SAN 127.0.0.1 and localhost).
- `broker.json`: the keystore password and the brokers' own SCRAM password.
- `<role>.properties` for every role in ROLES: a librdkafka-style client config (what
  `--kafka-config` reads), holding that role's SCRAM user and password. A role file is the one
  place its password lives; `rotate` rewrites it.

How the brokers are secured:
- Clients connect to one listener, SASL_SSL, with SCRAM-SHA-512; brokers talk to each other on
  it too, as the super user `broker`.
- The controller listener is SSL with client certificates required: only a holder of the
  brokers' key, signed by the cluster's CA, gets in (SCRAM cannot work there, because SCRAM
  users live in the metadata the controllers serve). The certificate's CN is its principal.
- StandardAuthorizer with allow.everyone.if.no.acl.found=false: a user may do what an ACL
  allows it (see acls.py) and nothing else. `broker` and `admin` are super users.
- A SASL session lasts at most `connections.max.reauth.ms` (REAUTH_AFTER_S by default): the
  client re-authenticates before then (KIP-368; librdkafka does since 2.2) with the password it
  holds now, or the broker closes the connection. So after `rotate`, an open connection of
  someone who kept the old password ends within that time, not when it happens to close.
- The SCRAM users exist from the first start: they are written into the storage at format time
  (KIP-900), so no one ever runs a broker without them.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from runtime.kafka import certs
from runtime.kafka.client_config import parse_properties

ROLES = ("producer", "processor", "node", "audit", "admin")
BROKER_USER = "broker"  # the brokers' principal: their SCRAM user and their certificate's CN
SUPER_USERS = (BROKER_USER, "admin")
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192  # what kafka-configs uses for SHA-512 by default
HOSTS = ["127.0.0.1", "localhost"]
LISTENER = "SASL_SSL"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# How long an old password can keep an already open connection after a rotation. Each client
# re-authenticates once per period per connection: one SCRAM exchange in five minutes is
# nothing to a broker.
REAUTH_AFTER_S = 300


class SecretsError(RuntimeError):
    """The secrets directory is missing or damaged; the message names the file."""


@dataclass(frozen=True)
class BrokerSecrets:
    dir: Path
    keystore_password: str
    broker_password: str

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.dir / "broker.p12"


def secrets_dir(cluster_dir: Path) -> Path:
    return Path(cluster_dir) / "secrets"


def role_file(cluster_dir: Path, role: str) -> Path:
    if role not in ROLES:
        raise SecretsError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    return secrets_dir(cluster_dir) / f"{role}.properties"


def prepare(cluster_dir: Path, bootstrap: str, hosts: list[str] = HOSTS,
            mounted_at: Path | None = None) -> BrokerSecrets:
    """Make what is missing (CA, broker keystore for `hosts`, passwords, role files) and point
    every role file at `bootstrap`; keep what exists, so a restart changes no password.
    Idempotent. `mounted_at`: where the secrets directory is seen by the brokers and clients
    that use it (a container's mount point), if not where it is written."""
    out = secrets_dir(cluster_dir)
    seen_at = Path(mounted_at) if mounted_at is not None else out
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    ca_pem, ca_key = out / "ca.pem", out / "ca.key"
    if not (ca_pem.is_file() and ca_key.is_file()):
        certs.make_ca(ca_pem, ca_key)
    internal = out / "broker.json"
    if internal.is_file():
        stored = json.loads(internal.read_text())
    else:
        stored = {"keystore_password": new_password(), "broker_password": new_password()}
        write_secret(internal, json.dumps(stored, indent=2) + "\n")
    if not (out / "broker.p12").is_file():
        certs.make_broker_keystore(out / "broker.p12", stored["keystore_password"], ca_pem, ca_key,
                                   BROKER_USER, hosts)
    for role in ROLES:
        path = role_file(cluster_dir, role)
        password = read_role(path)["sasl.password"] if path.is_file() else new_password()
        text = role_properties(role, password, bootstrap, seen_at / "ca.pem")
        if not path.is_file() or path.read_text() != text:
            write_secret(path, text)
    return BrokerSecrets(seen_at, stored["keystore_password"], stored["broker_password"])


def users(cluster_dir: Path, broker: BrokerSecrets) -> dict[str, str]:
    """Every SCRAM user of the cluster and its current password."""
    found = {BROKER_USER: broker.broker_password}
    for role in ROLES:
        found[role] = read_role(role_file(cluster_dir, role))["sasl.password"]
    return found


def role_properties(role: str, password: str, bootstrap: str, ca_pem: Path) -> str:
    """One role's client config, in the format `--kafka-config` reads (pure)."""
    return (f"# Wayfinder role {role!r}: pass this file as --kafka-config. Secret: keep it 0600.\n"
            f"bootstrap.servers={bootstrap}\n"
            f"security.protocol={LISTENER}\n"
            f"ssl.ca.location={ca_pem}\n"
            f"sasl.mechanisms={MECHANISM}\n"
            f"sasl.username={role}\n"
            f"sasl.password={password}\n")


def read_role(path: Path) -> dict[str, str]:
    try:
        settings = parse_properties(path.read_text(), str(path))
    except OSError as error:
        raise SecretsError(f"cannot read {path}: {error}") from None
    if not settings.get("sasl.password"):
        raise SecretsError(f"{path} has no sasl.password")
    return settings


def client_settings(cluster_dir: Path, role: str) -> dict[str, str]:
    """A role's client settings without bootstrap.servers, for confluent-kafka clients."""
    settings = read_role(role_file(cluster_dir, role))
    settings.pop("bootstrap.servers", None)
    return settings


def broker_settings(broker: BrokerSecrets, port: int, reauth_after_s: float = REAUTH_AFTER_S) -> dict[str, str]:
    """What a local secured broker's server.properties adds to, or changes in, a plain one:
    its listeners on loopback, and `security_settings` (pure)."""
    return {
        "listeners": f"{LISTENER}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
        "advertised.listeners": f"{LISTENER}://127.0.0.1:{port}",
        **security_settings(broker, reauth_after_s),
    }


def security_settings(broker: BrokerSecrets, reauth_after_s: float = REAUTH_AFTER_S) -> dict[str, str]:
    """Every broker setting of the security design above but the listeners' addresses: the
    local cluster's and any other deployment's (compose/) brokers share them (pure). The
    client listener is named SASL_SSL and the controller's CONTROLLER."""
    listener = LISTENER.lower()
    return {
        "inter.broker.listener.name": LISTENER,
        "listener.security.protocol.map": f"CONTROLLER:SSL,{LISTENER}:{LISTENER}",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.{listener}.{MECHANISM.lower()}.sasl.jaas.config":
            'org.apache.kafka.common.security.scram.ScramLoginModule required '
            f'username="{BROKER_USER}" password="{broker.broker_password}";',
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(broker.keystore),
        "ssl.keystore.password": broker.keystore_password,
        "ssl.key.password": broker.keystore_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(broker.ca_pem),
        "listener.name.controller.ssl.client.auth": "required",
        # The certificate's subject is "CN=broker"; its principal is then User:broker.
        "ssl.principal.mapping.rules": "RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(f"User:{u}" for u in SUPER_USERS),
        "connections.max.reauth.ms": str(round(reauth_after_s * 1000)),
    }


def rotate_role(path: Path, set_password) -> str:
    """Give the user of the role file `path` a new password: staged in a 0600 file first, then
    set on the brokers by `set_password(user, new)`, then put in place of the file. A failure
    before the brokers took it leaves the old password working; the staged file is removed
    either way. Returns the user."""
    # Two rotations at once must not leave the brokers with one's password and the file with
    # the other's: one at a time per directory.
    with open(path.parent / ".rotate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_role(path)
        role = current.get("sasl.username", "")
        if not role:
            raise SecretsError(f"{path} has no sasl.username")
        password = new_password()
        staged = path.with_name(path.name + ".next")
        write_secret(staged, role_properties(role, password, current["bootstrap.servers"],
                                             Path(current["ssl.ca.location"])))
        try:
            set_password(role, password)
            staged.replace(path)
        finally:
            staged.unlink(missing_ok=True)
    return role


def export_for_brokers(cluster_dir: Path, broker: BrokerSecrets,
                       reauth_after_s: float = REAUTH_AFTER_S) -> tuple[Path, Path]:
    """For brokers that `kafka up` does not run (compose/, an operator's own): write their
    security settings (`broker-security.properties`, to append to each server.properties) and
    the SCRAM users to format their storage with (`scram-users.args`, StorageTool arguments,
    one per line). Both hold secrets: 0600."""
    out = secrets_dir(cluster_dir)
    settings, args = out / "broker-security.properties", out / "scram-users.args"
    write_secret(settings, "".join(f"{k}={v}\n" for k, v in security_settings(broker, reauth_after_s).items()))
    write_secret(args, "".join(f"{arg}\n" for arg in scram_format_args(users(cluster_dir, broker))))
    return settings, args


def scram_format_args(passwords: dict[str, str]) -> list[str]:
    """StorageTool arguments that write these SCRAM users into a new storage (pure)."""
    args = []
    for user, password in sorted(passwords.items()):
        args += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
    return args


def new_password() -> str:
    return secrets.token_urlsafe(24)  # letters, digits, '-' and '_': safe in every file format


def write_secret(path: Path, text: str) -> None:
    """Write a file that holds a secret: created 0600 (never readable for a moment), then
    renamed into place, so a reader sees the old file or the new one, never half of one."""
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    staged.replace(path)
