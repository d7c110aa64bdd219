"""compose/docker-compose.yml is valid Compose, as the compose tool itself parses it.

`config` needs no Docker engine, so this runs on machines without one. Debian's
`docker-compose` package provides the tool here; the docker CLI's `compose` plugin works too.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = _compose_command()
    if command is None:
        pytest.skip("no compose tool: neither `docker-compose` nor the `docker compose` plugin "
                    "is installed (Debian package: docker-compose)")
    return [*command, "--project-directory", str(COMPOSE_DIR),
            "-f", str(COMPOSE_DIR / "docker-compose.yml")]


def _config(compose: list[str], *args: str) -> str:
    result = subprocess.run([*compose, "config", *args], cwd=COMPOSE_DIR, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_file_is_valid_and_has_the_services(compose):
    assert sorted(_config(compose, "--services").split()) == [
        "kafka", "node", "processor", "processor-standby", "producer", "simulator"]


def test_resolved_config_wires_wayfinder_to_kafka_4_0_2(compose):
    resolved = _config(compose)
    assert "image: apache/kafka:4.0.2" in resolved
    assert "KAFKA_PROCESS_ROLES: broker,controller" in resolved
    # The producer reaches the broker's in-network listener and waits for both dependencies.
    assert "--bootstrap=kafka:9092" in resolved
    assert "INTERNAL://kafka:9092" in resolved
    assert resolved.count("condition: service_healthy") == 5  # producer (2), both processors, node
    # The node reaches Kafka from the host's network, through the loopback listener.
    assert "--bootstrap=127.0.0.1:9094" in resolved and "network_mode: host" in resolved
    assert "- NET_ADMIN" in resolved
    # Every Wayfinder service builds the one image from compose/Dockerfile.
    assert resolved.count("dockerfile: compose/Dockerfile") == 5
    # Two processors, one election: a session the compose broker accepts (its minimum is 1 s).
    assert resolved.count("--session-timeout-ms=3000") == 2
    assert "KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: 1000" in resolved


# compose/cluster.yml: the trial next to a real Mesos cluster (three brokers, monitoring).

@pytest.fixture(scope="module")
def cluster(compose) -> dict[str, str]:
    """The resolved cluster.yml, one block of text per service (the compose tool prints
    YAML; the services are the two-space-indented keys under `services:`)."""
    tool = compose[:compose.index("--project-directory")]
    result = subprocess.run([*tool, "--project-directory", str(COMPOSE_DIR), "-f", str(COMPOSE_DIR / "cluster.yml"),
                             "config"], cwd=COMPOSE_DIR, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ.get("PATH", "")})
    assert result.returncode == 0, result.stderr
    services = ("\n" + result.stdout).split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    blocks = re.split(r"^  (?=[a-z][\w-]*:\n)", services, flags=re.MULTILINE)
    return {block.split(":", 1)[0]: block for block in blocks if block.strip()}


def _command(block: str) -> list[str]:
    lines = block.split("    command:\n", 1)[1].splitlines()
    return [line[6:] for line in itertools.takewhile(lambda line: line.startswith("    - "), lines)]


def test_cluster_has_three_brokers_the_pipeline_and_monitoring(cluster):
    assert sorted(cluster) == ["grafana", "kafka-1", "kafka-2", "kafka-3", "node", "processor",
                               "processor-standby", "producer", "prometheus"]


@pytest.mark.parametrize("node_id", [1, 2, 3])
def test_cluster_brokers_form_one_quorum_with_three_copies_and_two_in_sync(cluster, node_id):
    block = cluster[f"kafka-{node_id}"]
    assert "image: apache/kafka:4.0.2" in block
    for setting in (f"KAFKA_NODE_ID: {node_id}",
                    "KAFKA_PROCESS_ROLES: broker,controller",
                    "KAFKA_CONTROLLER_QUORUM_VOTERS: 1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093",
                    "CLUSTER_ID: d2F5ZmluZGVyLWNsdXN0ZQ",
                    "KAFKA_DEFAULT_REPLICATION_FACTOR: 3", "KAFKA_MIN_INSYNC_REPLICAS: 2",
                    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: 3",
                    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: 3", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: 2",
                    f"KAFKA_ADVERTISED_LISTENERS: INTERNAL://kafka-{node_id}:9092,HOST://127.0.0.1:{9093 + node_id}",
                    f"- 127.0.0.1:{9093 + node_id}:{9093 + node_id}/tcp"):
        assert setting in block, setting


def test_cluster_runs_each_wayfinder_process_with_its_metrics_port(cluster):
    brokers = "--bootstrap=kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert _command(cluster["producer"]) == [
        "produce", brokers, "--mesos=http://host.docker.internal:5050", "--marathon=http://host.docker.internal:8080",
        "--masters=", "--metrics-listen=0.0.0.0:9310"]
    assert _command(cluster["processor"]) == ["process", brokers, "--metrics-listen=0.0.0.0:9311"]
    assert _command(cluster["processor-standby"]) == _command(cluster["processor"])
    assert _command(cluster["node"]) == [
        "node", "--bootstrap=127.0.0.1:9094,127.0.0.1:9095,127.0.0.1:9096", "--node-id=compose-node",
        "--agent-ip=127.0.0.1", "--roles=l4lb,dns,haproxy", "--dns-listen=127.0.0.1:53",
        "--dns-http=127.0.0.1:8123", "--metrics-listen=0.0.0.0:9312"]
    assert "network_mode: host" in cluster["node"] and "- NET_ADMIN" in cluster["node"]


def test_cluster_producer_points_at_the_mesos_and_marathon_it_is_given(compose):
    tool = compose[:compose.index("--project-directory")]
    result = subprocess.run([*tool, "-f", str(COMPOSE_DIR / "cluster.yml"), "config"], cwd=COMPOSE_DIR,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ.get("PATH", ""), "MESOS_URL": "http://10.0.0.1:5050",
                                 "MARATHON_URL": "http://10.0.0.1:8080", "MESOS_MASTERS": "10.0.0.1:5050,10.0.0.2:5050"})
    assert result.returncode == 0, result.stderr
    for argument in ("--mesos=http://10.0.0.1:5050", "--marathon=http://10.0.0.1:8080",
                     "--masters=10.0.0.1:5050,10.0.0.2:5050"):
        assert f"    - {argument}\n" in result.stdout


def test_cluster_monitoring_scrapes_every_metrics_port_and_provisions_the_dashboard(cluster):
    assert "- ./prometheus/alerts.yml:/etc/prometheus/alerts.yml" in cluster["prometheus"].replace(
        str(COMPOSE_DIR), ".")
    prometheus = (COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text()
    targets = re.findall(r'targets: \[(.*)\]', prometheus)
    assert targets == ['"producer:9310"', '"processor:9311", "processor-standby:9311"', '"host.docker.internal:9312"']
    assert "- /etc/prometheus/alerts.yml" in prometheus
    grafana = cluster["grafana"].replace(str(COMPOSE_DIR), ".")
    assert "./grafana/wayfinder-dashboard.json:/var/lib/grafana/dashboards/wayfinder-dashboard.json:ro" in grafana
    provider = (COMPOSE_DIR / "grafana" / "provisioning" / "dashboards" / "wayfinder.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    datasource = (COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert "url: http://prometheus:9090" in datasource and "uid: prometheus" in datasource


def test_prometheus_config_is_valid_for_promtool():
    if not shutil.which("promtool"):
        pytest.skip("no promtool (Debian package prometheus)")
    # --syntax-only: alerts.yml has its own check; here the scrape configuration.
    result = subprocess.run(["promtool", "check", "config", "--syntax-only",
                             str(COMPOSE_DIR / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# compose/secure.yml: the secure profile of cluster.yml (TLS, SCRAM users per role, ACLs only).
# A file of its own rather than a `profiles:` entry in cluster.yml: a profile only adds
# services, and cluster.yml's plaintext brokers would still start beside the secured ones.

WAYFINDER_SERVICES = {"producer": "producer", "processor": "processor", "processor-standby": "processor",
                      "node": "node", "acls": "admin"}
BROKERS = ("kafka-1", "kafka-2", "kafka-3")


@pytest.fixture(scope="module")
def secure(compose) -> dict[str, str]:
    """The resolved secure.yml, one block of text per service (as `cluster` above)."""
    tool = compose[:compose.index("--project-directory")]
    result = subprocess.run([*tool, "--project-directory", str(COMPOSE_DIR), "-f", str(COMPOSE_DIR / "secure.yml"),
                             "config"], cwd=COMPOSE_DIR, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ.get("PATH", "")})
    assert result.returncode == 0, result.stderr
    services = ("\n" + result.stdout).split("\nservices:\n", 1)[1].split("\nversion:", 1)[0].split("\nvolumes:\n", 1)[0]
    blocks = re.split(r"^  (?=[a-z][\w-]*:\n)", services, flags=re.MULTILINE)
    return {block.split(":", 1)[0]: block.replace(str(COMPOSE_DIR), ".") for block in blocks if block.strip()}


def _list(block: str, key: str) -> list[str]:
    """The items of a list at the service's top level (`    key:` then `    - item` lines)."""
    if f"\n    {key}:\n" not in block:
        return []
    lines = block.split(f"\n    {key}:\n", 1)[1].splitlines()
    return [line[6:] for line in itertools.takewhile(lambda line: line.startswith("    - "), lines)]


def _mapping(block: str, key: str) -> dict[str, str]:
    """A flat mapping at the service's top level (`    key:` then `      name: value` lines)."""
    if f"\n    {key}:\n" not in block:
        return {}
    lines = block.split(f"\n    {key}:\n", 1)[1].splitlines()
    items = itertools.takewhile(lambda line: line.startswith("      "), lines)
    return dict(line.strip().split(": ", 1) for line in items if not line.startswith("       "))


def _depends_on(block: str) -> dict[str, str]:
    """Each dependency and its condition."""
    if "\n    depends_on:\n" not in block:
        return {}
    lines = block.split("\n    depends_on:\n", 1)[1].splitlines()
    found, name = {}, None
    for line in itertools.takewhile(lambda line: line.startswith("      "), lines):
        if not line.startswith("       "):
            name = line.strip().rstrip(":")
        elif line.strip().startswith("condition:"):
            found[name] = line.split(":", 1)[1].strip()
    return found


def _secret_volumes(block: str) -> list[str]:
    return [volume for volume in _list(block, "volumes") if volume.startswith("secrets-")]


def test_secure_has_the_layout_of_cluster_and_two_one_shot_steps(secure, cluster):
    assert sorted(secure) == sorted([*cluster, "secrets", "acls"])


def test_secure_starts_secrets_then_brokers_then_acls_then_wayfinder(secure):
    assert _depends_on(secure["secrets"]) == {}
    for broker in BROKERS:
        assert _depends_on(secure[broker]) == {"secrets": "service_completed_successfully"}
    # A quorum that serves, as cluster.yml's services wait for (min ISR 2: two brokers suffice).
    assert _depends_on(secure["acls"]) == {"kafka-1": "service_healthy", "kafka-2": "service_healthy"}
    for service in ("producer", "processor", "processor-standby", "node"):
        assert _depends_on(secure[service]) == {"acls": "service_completed_successfully"}, service
    # The one-shot steps run to their end; restarting them would keep their dependants waiting.
    for service in ("secrets", "acls"):
        assert 'restart: "no"' in secure[service]


def test_secure_wayfinder_services_connect_with_their_own_role_only(secure):
    for service, role in WAYFINDER_SERVICES.items():
        command = _command(secure[service])
        assert f"--kafka-config=/secrets/{role}.properties" in command, service
        assert not any(arg.startswith("--bootstrap") for arg in command), (service, command)
        assert "BOOTSTRAP" not in secure[service], service
        # Its own role's share of the secrets, read-only, and no other.
        assert _secret_volumes(secure[service]) == [f"secrets-{role}:/secrets:ro"], service
    assert _command(secure["acls"])[:3] == ["kafka", "acls", "--apply"]


def test_secure_processes_keep_clusters_metrics_and_mesos_settings(secure, cluster):
    def without_kafka(block):
        return [arg for arg in _command(block) if not arg.startswith(("--bootstrap", "--kafka-config"))]
    for service in ("producer", "processor", "processor-standby", "node"):
        assert without_kafka(secure[service]) == without_kafka(cluster[service]), service
    assert "network_mode: host" in secure["node"] and "- NET_ADMIN" in secure["node"]


@pytest.mark.parametrize("node_id", [1, 2, 3])
def test_secure_brokers_advertise_sasl_ssl_only(secure, node_id):
    block = secure[f"kafka-{node_id}"]
    environment = _mapping(block, "environment")
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == f"SASL_SSL://kafka-{node_id}:9092"
    assert environment["KAFKA_LISTENERS"] == "SASL_SSL://:9092,CONTROLLER://:9093"
    assert environment["KAFKA_NODE_ID"] == str(node_id)
    # The security settings come from the secrets (broker-security.properties), never from here.
    for key in ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_INTER_BROKER_LISTENER_NAME", "KAFKA_SUPER_USERS",
                "KAFKA_AUTHORIZER_CLASS_NAME", "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"):
        assert key not in environment, key
    assert "PLAINTEXT" not in block
    assert "image: apache/kafka:4.0.2" in block
    assert _list(block, "entrypoint") == ["bash", "/opt/wayfinder-secure/broker.sh"]
    assert _command(block) == ["start"]
    assert "- /opt/wayfinder-secure/broker.sh\n      - health" in block  # the healthcheck


def test_secure_brokers_share_clusters_settings_but_the_listeners(secure, cluster):
    listeners = {"KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                 "KAFKA_INTER_BROKER_LISTENER_NAME", "CLUSTER_ID"}
    for broker in BROKERS:
        plain = {k: v for k, v in _mapping(cluster[broker], "environment").items() if k not in listeners}
        secured = {k: v for k, v in _mapping(secure[broker], "environment").items() if k not in listeners}
        assert secured == plain, broker


def test_secure_publishes_no_plaintext_kafka_port(secure):
    published = {service: _list(block, "ports") for service, block in secure.items() if _list(block, "ports")}
    # Each broker's SASL_SSL listener on a loopback address of its own (for the node, on the
    # host's network), the monitoring as in cluster.yml; nothing else.
    assert published == {"kafka-1": ["127.0.9.1:9092:9092/tcp"], "kafka-2": ["127.0.9.2:9092:9092/tcp"],
                         "kafka-3": ["127.0.9.3:9092:9092/tcp"], "prometheus": ["127.0.0.1:9090:9090/tcp"],
                         "grafana": ["127.0.0.1:3000:3000/tcp"]}
    # The node resolves each broker's advertised name (its certificate's) to that address.
    assert _list(secure["node"], "extra_hosts") == ["kafka-1:127.0.9.1", "kafka-2:127.0.9.2", "kafka-3:127.0.9.3"]


def test_secure_brokers_mount_only_their_secrets_read_only(secure):
    for broker in BROKERS:
        assert _secret_volumes(secure[broker]) == ["secrets-broker:/secrets:ro"], broker
        assert "./secure/broker.sh:/opt/wayfinder-secure/broker.sh:ro" in _list(secure[broker], "volumes")
    # The vault (the CA's key, every password) is the secrets service's alone; it writes each share.
    mounting_vault = [service for service, block in secure.items() if "secrets-vault:" in block]
    assert mounting_vault == ["secrets"]
    assert _secret_volumes(secure["secrets"]) == [
        "secrets-vault:/vault:rw", "secrets-broker:/out/broker:rw", "secrets-producer:/out/producer:rw",
        "secrets-processor:/out/processor:rw", "secrets-node:/out/node:rw", "secrets-admin:/out/admin:rw"]
    assert "network_mode: none" in secure["secrets"]
    assert _mapping(secure["secrets"], "environment") == {
        "KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092,kafka-3:9092", "KAFKA_HOSTS": "kafka-1,kafka-2,kafka-3"}


def test_secure_monitoring_is_clusters(secure, cluster):
    def rendered(block):  # without the `version:` line that follows the last service
        return block.replace(str(COMPOSE_DIR), ".").split("\nversion:", 1)[0].rstrip("\n")
    for service in ("prometheus", "grafana"):
        assert rendered(secure[service]) == rendered(cluster[service]), service


# The scripts under compose/secure/, run here without Docker or Kafka.
