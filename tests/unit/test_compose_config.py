"""compose/docker-compose.yml is valid Compose, as the compose tool itself parses it.

`config` needs no Docker engine, so this runs on machines without one. Debian's
`docker-compose` package provides the tool here; the docker CLI's `compose` plugin works too.
"""

from __future__ import annotations

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
