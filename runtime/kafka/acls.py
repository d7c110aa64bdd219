"""The access lists of a secured cluster, derived from the topic catalog (pure: no I/O).

The catalog names every topic's writers and readers (`producers/mesos`, `processors/dns`,
`appliers/l4lb` …). Each of those components runs as one role, and a role may do exactly what
its components need:
- a writer may WRITE, DESCRIBE and CREATE the topic (whoever starts first creates it), and READ
  it too when it is a table, because a writer rebuilds its state from its own table on start;
- a reader may READ and DESCRIBE it;
- `audit` may READ and DESCRIBE every topic, and write nothing;
- the processors also use their election group and their transactional id;
- every role may DESCRIBE the throwaway groups of its readers (UNJOINED_GROUP_PREFIX):
  librdkafka looks their coordinator up though they never join, commit or read through them;
- `admin` (and the brokers) are super users and need no ACL.

The ACLs name this namespace's topics literally, so several namespaces can share a Kafka
without one's roles reaching the other's topics.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.kafka.client_config import UNJOINED_GROUP_PREFIX
from schemas.catalog import Catalog

# Component prefix in the catalog -> the role it runs as (see runtime/kafka/secure.ROLES).
ROLE_OF_COMPONENT = {"producers": "producer", "processors": "processor", "appliers": "node"}
AUDIT_ROLE = "audit"
GRANTED_ROLES = ("producer", "processor", "node", AUDIT_ROLE)  # admin is a super user

WRITE_OPERATIONS = ("WRITE", "DESCRIBE", "CREATE")
READ_OPERATIONS = ("READ", "DESCRIBE")


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: `role` may do `operation` on the resource (type, name, pattern)."""
    role: str
    resource_type: str  # TOPIC, GROUP or TRANSACTIONAL_ID, as Kafka names them
    resource_name: str
    operation: str  # READ, WRITE, DESCRIBE, CREATE
    pattern: str = "LITERAL"

    @property
    def principal(self) -> str:
        return f"User:{self.role}"


def role_of(component: str) -> str | None:
    """`processors/dns` -> processor; None for components that are not roles (pure)."""
    return ROLE_OF_COMPONENT.get(component.split("/", 1)[0])


def derive(catalog: Catalog) -> list[Grant]:
    """Every ACL the roles of this namespace need, sorted and without repeats."""
    grants: set[Grant] = set()

    def allow(role: str, resource_type: str, name: str, operations: tuple[str, ...]) -> None:
        grants.update(Grant(role, resource_type, name, op) for op in operations)

    for topic in catalog.topics:
        for role in {r for w in topic.writers if (r := role_of(w))}:
            allow(role, "TOPIC", topic.name,
                  WRITE_OPERATIONS + (("READ",) if topic.compacted else ()))
        for role in {r for reader in topic.readers if (r := role_of(reader))}:
            allow(role, "TOPIC", topic.name, READ_OPERATIONS)
        allow(AUDIT_ROLE, "TOPIC", topic.name, READ_OPERATIONS)
    for role in GRANTED_ROLES:
        grants.add(Grant(role, "GROUP", UNJOINED_GROUP_PREFIX, "DESCRIBE", "PREFIXED"))
    allow("processor", "GROUP", catalog.processor_group, ("READ", "DESCRIBE"))
    allow("processor", "TRANSACTIONAL_ID", catalog.processor_transactional_id, ("WRITE", "DESCRIBE"))
    return sorted(grants)


def owned_by(catalog: Catalog, resource_name: str) -> bool:
    """Whether a resource's ACLs are ours to add and remove: this namespace's resources, and
    the readers' groups every namespace shares."""
    return resource_name.startswith(f"{catalog.namespace}.") or resource_name == UNJOINED_GROUP_PREFIX


def table(grants: list[Grant]) -> list[tuple[str, str, str, str]]:
    """Rows of (role, resource type, name, operations), one per role and resource (pure)."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    prefixed = {(g.role, g.resource_type, g.resource_name) for g in grants if g.pattern == "PREFIXED"}
    for g in grants:
        rows.setdefault((g.role, g.resource_type, g.resource_name), []).append(g.operation)
    order = {role: i for i, role in enumerate(GRANTED_ROLES)}
    return [(role, rtype, name + ("*" if (role, rtype, name) in prefixed else ""), ",".join(sorted(ops)))
            for (role, rtype, name), ops in sorted(rows.items(), key=lambda kv: (order[kv[0][0]], kv[0]))]
