"""The private certificate authority of a secured cluster, and its brokers' certificate: the one
seam to the `openssl` command line here.

Brokers read a PKCS#12 keystore (Java 17 reads openssl's PKCS#12 as it is) and trust the CA from
a PEM file; clients (librdkafka) need only the CA's PEM (`ssl.ca.location`). Keys are EC P-256:
made in milliseconds, and every client and the JVM speak ECDSA.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

OPENSSL = "openssl"
CA_NAME = "wayfinder-kafka-ca"
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class CertificateError(RuntimeError):
    """openssl could not make a key or a certificate; the message carries its output."""


def make_ca(ca_pem: Path, ca_key: Path, days: int = 3650) -> None:
    """A self-signed CA certificate (ca_pem, public) and its key (ca_key, mode 0600)."""
    _run([OPENSSL, "req", "-x509", *EC_KEY, "-keyout", str(ca_key), "-out", str(ca_pem),
          "-days", str(days), "-subj", f"/CN={CA_NAME}",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    os.chmod(ca_key, 0o600)


def make_broker_keystore(keystore: Path, password: str, ca_pem: Path, ca_key: Path,
                         common_name: str, hosts: list[str], days: int = 825) -> None:
    """A PKCS#12 keystore (mode 0600) with a key and a certificate the CA signed for `hosts`.

    The certificate serves both ends: the brokers' listeners (serverAuth, a SAN per host, which
    clients verify) and the brokers' own connections to the controller listener, where it is
    their client certificate (clientAuth) and its CN their principal (User:<common_name>)."""
    with tempfile.TemporaryDirectory(prefix="wayfinder-certs-") as scratch:
        key, csr, cert, ext = (Path(scratch) / n for n in ("key.pem", "req.csr", "cert.pem", "ext.cnf"))
        _run([OPENSSL, "req", *EC_KEY, "-keyout", str(key), "-out", str(csr),
              "-subj", f"/CN={common_name}"])
        ext.write_text(f"subjectAltName={subject_alt_names(hosts)}\n"
                       "basicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n")
        _run([OPENSSL, "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
              "-CAcreateserial", "-CAserial", str(Path(scratch) / "ca.srl"), "-out", str(cert),
              "-days", str(days), "-extfile", str(ext)])
        # The password goes through the environment: a command line is visible in ps.
        staged = keystore.with_name(keystore.name + ".new")
        _run([OPENSSL, "pkcs12", "-export", "-in", str(cert), "-inkey", str(key),
              "-certfile", str(ca_pem), "-name", common_name, "-out", str(staged),
              "-passout", "env:WAYFINDER_KEYSTORE_PASSWORD"],
             env={**os.environ, "WAYFINDER_KEYSTORE_PASSWORD": password})
        os.chmod(staged, 0o600)
        staged.replace(keystore)


def subject_alt_names(hosts: list[str]) -> str:
    """openssl's subjectAltName value: IP entries for addresses, DNS entries for names (pure)."""
    def entry(host: str) -> str:
        is_ip = host.replace(".", "").isdigit() or ":" in host
        return f"IP:{host}" if is_ip else f"DNS:{host}"
    return ",".join(entry(h) for h in hosts)


def _run(cmd: list[str], env: dict | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    except FileNotFoundError:
        raise CertificateError("openssl is not installed (Debian: apt-get install openssl)") from None
    except subprocess.TimeoutExpired:
        raise CertificateError(f"{' '.join(cmd[:2])} did not finish within 60 s") from None
    if proc.returncode != 0:
        raise CertificateError(f"{' '.join(cmd[:2])} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
