"""Provision Apache Kafka from Maven Central: resolve the broker's classpath once, cache it.

No tarball and no Docker: Maven Central is the one place that serves Kafka here, and the jars it
resolves (into ~/.m2) are exactly what `kafka.Kafka` needs. What we cache is the classpath line
Maven prints, so a warm `install()` costs a few stat() calls and no JVM.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# The one pin of the broker version: templated into pom.xml and into the cache directory name,
# so two versions never share (or overwrite) a classpath.
KAFKA_VERSION = "4.0.2"
MIN_JAVA = 17  # Kafka 4.x brokers require Java 17

POM_TEMPLATE = Path(__file__).with_name("pom.xml")
MAVEN_TIMEOUT_S = 900  # a cold ~/.m2 downloads ~40 MB of jars; bound it anyway


class KafkaInstallError(RuntimeError):
    """Java or Maven is missing or too old, or Maven could not resolve the jars."""


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "wayfinder" / f"kafka-{KAFKA_VERSION}"


def install(cache_dir: Path | None = None) -> Path:
    """Make sure the broker's jars are local; return the path of the cached classpath file.

    Idempotent: when the cached classpath exists and every jar on it still exists, Maven is not
    run (someone may have wiped ~/.m2, hence the per-jar check).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    classpath_file = cache_dir / "classpath.txt"
    if _classpath_complete(classpath_file):
        return classpath_file
    check_java()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaInstallError(
            "Maven (mvn) is not on PATH; it resolves Kafka's jars from Maven Central. "
            "Install it (Debian: apt-get install maven)."
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    pom = cache_dir / "pom.xml"
    pom.write_text(POM_TEMPLATE.read_text().replace("@KAFKA_VERSION@", KAFKA_VERSION))
    # Maven writes the output file itself; write to a temp name and rename so a killed run
    # never leaves a half-written classpath that a later call would trust.
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=".classpath.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        proc = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:build-classpath",
             f"-Dmdep.outputFile={tmp}"],
            cwd=cache_dir, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise KafkaInstallError(
                f"mvn dependency:build-classpath failed (exit {proc.returncode}) for "
                f"Kafka {KAFKA_VERSION}; is Maven Central reachable?\n{tail}"
            )
        tmp.replace(classpath_file)
    except subprocess.TimeoutExpired as exc:
        raise KafkaInstallError(f"mvn did not finish within {MAVEN_TIMEOUT_S} s") from exc
    finally:
        tmp.unlink(missing_ok=True)
    if not _classpath_complete(classpath_file):
        raise KafkaInstallError(f"Maven wrote {classpath_file} but some jars on it are missing")
    return classpath_file


def read_classpath(classpath_file: Path) -> str:
    return classpath_file.read_text().strip()


def _classpath_complete(classpath_file: Path) -> bool:
    if not classpath_file.is_file():
        return False
    jars = [j for j in read_classpath(classpath_file).split(os.pathsep) if j]
    # The core jar must be there, or the file is not a Kafka classpath at all.
    has_core = any(Path(j).name == f"kafka_2.13-{KAFKA_VERSION}.jar" for j in jars)
    return has_core and all(Path(j).is_file() for j in jars)


def check_java() -> str:
    """Return the path of a java >= 17, or raise with what to install."""
    java = java_executable()
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KafkaInstallError(f"could not run {java} -version: {exc}") from exc
    # `java -version` prints to stderr: openjdk version "17.0.15" / "1.8.0_392"
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise KafkaInstallError(f"could not parse the Java version from: {out.stderr.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # the pre-9 scheme, "1.8"
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise KafkaInstallError(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, found Java {major} at {java} "
            "(Debian: apt-get install openjdk-17-jre-headless)."
        )
    return java


def java_executable() -> str:
    # JAVA_HOME wins, as with Kafka's own scripts, so a machine with several JDKs can choose.
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaInstallError(
            f"java is not on PATH; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+ "
            "(Debian: apt-get install openjdk-17-jre-headless)."
        )
    return java
