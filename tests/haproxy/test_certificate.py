"""The node's self-signed certificate: one PEM with certificate and key, mode 0600, made once."""

import shutil
import stat

import pytest

from appliers.haproxy.certificate import ensure_certificate
from appliers.haproxy.settings import HaproxySettings


@pytest.fixture(autouse=True)
def _openssl():
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is missing")


def test_made_once_as_one_private_pem(tmp_path):
    settings = HaproxySettings(directory=str(tmp_path / "haproxy"))
    path = ensure_certificate(settings)
    assert path == str(tmp_path / "haproxy" / "self-signed.pem")
    text = open(path).read()
    assert "BEGIN CERTIFICATE" in text and "PRIVATE KEY" in text
    assert stat.S_IMODE((tmp_path / "haproxy" / "self-signed.pem").stat().st_mode) == 0o600
    assert ensure_certificate(settings) == path and open(path).read() == text  # reused


def test_a_given_certificate_must_exist(tmp_path):
    settings = HaproxySettings(directory=str(tmp_path), ssl_cert=str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError, match="missing.pem"):
        ensure_certificate(settings)
