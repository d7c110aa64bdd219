"""A self-signed certificate for the HTTPS frontend when the node is given none (as
marathon-lb's image does), so `marathon_https_in` works out of the box. Made with the
`openssl` command line; HAProxy wants the certificate and its key in one PEM file."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from appliers.haproxy.settings import HaproxySettings

OPENSSL = "openssl"


def ensure_certificate(settings: HaproxySettings, timeout: float = 60.0) -> str:
    """The path of the HTTPS frontend's certificate. With --haproxy-ssl-cert: that file, which
    must exist. Without: <directory>/self-signed.pem, made once (mode 0600) and then reused."""
    path = Path(settings.cert_path)
    if settings.ssl_cert is not None:
        if not path.is_file():
            raise FileNotFoundError(f"--haproxy-ssl-cert {path} does not exist")
        return str(path)
    if not path.is_file():
        make_self_signed(path, timeout=timeout)
    return str(path)


def make_self_signed(path: Path, common_name: str = "wayfinder-haproxy", days: int = 3650,
                     timeout: float = 60.0) -> None:
    """Write a new self-signed certificate and its RSA key to `path` as one PEM, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        key, cert = Path(scratch) / "key.pem", Path(scratch) / "cert.pem"
        subprocess.run(
            [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-days", str(days), "-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=timeout,
        )
        combined = Path(scratch) / "combined.pem"
        # created 0600 before the key is written into it
        descriptor = os.open(combined, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(cert.read_bytes() + key.read_bytes())
        os.replace(combined, path)  # atomic: HAProxy never reads half a file


__all__ = ["ensure_certificate", "make_self_signed"]
