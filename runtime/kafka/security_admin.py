"""The seam to Kafka's admin API for security: applying the derived ACLs, and setting a SCRAM
user's password. Both need a super user's client settings (the `admin` role)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType, ResourceType,
                                   ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)

from runtime.kafka.acls import GRANTED_ROLES, Grant, owned_by
from runtime.kafka.secure import SCRAM_ITERATIONS
from runtime.logs import with_client_logging
from schemas.catalog import Catalog

TIMEOUT_S = 15.0


class SecurityAdminError(RuntimeError):
    """The brokers refused or did not answer; the message says which call and why."""


@dataclass(frozen=True)
class AclChanges:
    added: int
    removed: int
    kept: int


def apply_acls(bootstrap: str, settings: dict[str, str], catalog: Catalog,
               grants: list[Grant]) -> AclChanges:
    """Make the cluster's ACLs of this namespace's roles exactly `grants`: add the missing
    ones, remove the ones no longer derived (on this namespace's resources only), keep the
    rest. Running it twice changes nothing the second time."""
    admin = _admin(bootstrap, settings)
    desired = {_binding(g) for g in grants}
    present: set[AclBinding] = set()
    for role in GRANTED_ROLES:
        found = _result(admin.describe_acls(AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{role}", None,
            AclOperation.ANY, AclPermissionType.ANY), request_timeout=TIMEOUT_S), "describe_acls")
        present.update(b for b in found if owned_by(catalog, b.name))
    missing, extra = desired - present, present - desired
    if missing:
        for future in admin.create_acls(sorted(missing, key=str), request_timeout=TIMEOUT_S).values():
            _result(future, "create_acls")
    if extra:
        filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                                    b.operation, b.permission_type) for b in extra]
        for future in admin.delete_acls(filters, request_timeout=TIMEOUT_S).values():
            _result(future, "delete_acls")
    return AclChanges(added=len(missing), removed=len(extra), kept=len(desired & present))


def set_password(bootstrap: str, settings: dict[str, str], user: str, password: str,
                 mechanism: str = "SCRAM-SHA-512") -> None:
    """Give a SCRAM user a new password. The brokers check it on every new connection from
    then on; connections already authenticated stay open."""
    admin = _admin(bootstrap, settings)
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism[mechanism.replace("-", "_")], SCRAM_ITERATIONS),
        password.encode())
    for future in admin.alter_user_scram_credentials([upsert], request_timeout=TIMEOUT_S).values():
        _result(future, "alter_user_scram_credentials")


def _binding(grant: Grant) -> AclBinding:
    return AclBinding(ResourceType[grant.resource_type], grant.resource_name,
                      ResourcePatternType[grant.pattern], grant.principal, "*",
                      AclOperation[grant.operation], AclPermissionType.ALLOW)


def _admin(bootstrap: str, settings: dict[str, str]) -> AdminClient:
    return AdminClient(with_client_logging({**settings, "bootstrap.servers": bootstrap}))


def _result(future, call: str):
    try:
        return future.result(timeout=TIMEOUT_S)
    except KafkaException as error:
        kafka_error = error.args[0]
        if kafka_error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
            raise SecurityAdminError(f"{call} refused: this user may not administer the cluster "
                                     "(use the admin role's --kafka-config)") from None
        # The broker's text can run to kilobytes (it echoes the whole request): its start says why.
        raise SecurityAdminError(f"{call} refused ({kafka_error.name()}): {kafka_error.str()[:200]}") from None
    except TimeoutError:
        raise SecurityAdminError(f"{call}: no answer within {TIMEOUT_S:.0f} s") from None
