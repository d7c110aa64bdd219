"""One haproxy node per --haproxy-dir (appliers/haproxy/directory_lock.py): a second one is
refused with one line naming the directory and the holder's pid, and a stopped (or killed)
node leaves the directory free. No HAProxy and no Kafka: the lock alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliers.haproxy.directory_lock import DirectoryInUse, DirectoryLock, check_free
from appliers.haproxy.role import HaproxyRole
from appliers.haproxy.settings import HaproxySettings
from cli.main import main

REPO = Path(__file__).resolve().parents[2]


def in_use(directory, pid: int) -> str:
    return (f"--haproxy-dir {directory} is in use by another wayfinder node (pid {pid}): two haproxy nodes on "
            "one directory would overwrite each other's config and master socket; give each node its own")


class NoHaproxy:
    """The role's process, never started: the role only stops it on close."""

    running = False

    def stop(self) -> None:
        pass


def role_on(directory: Path, tmp_path: Path) -> HaproxyRole:
    certificate = tmp_path / "given.pem"
    certificate.touch()  # given, so that open makes no self-signed one
    return HaproxyRole(HaproxySettings(directory=str(directory), ssl_cert=str(certificate)), NoHaproxy())


def test_a_second_role_on_the_directory_is_refused_until_the_first_one_closes(tmp_path):
    directory = tmp_path / "haproxy"
    first, second = role_on(directory, tmp_path), role_on(directory, tmp_path)
    asyncio.run(first.open())
    with pytest.raises(DirectoryInUse) as refused:
        asyncio.run(second.open())
    assert str(refused.value) == in_use(directory, os.getpid())
    asyncio.run(second.close())  # as the reconcile loop does after a failed open: not the first's lock
    with pytest.raises(DirectoryInUse):
        check_free(directory)

    asyncio.run(first.close())
    check_free(directory)
    asyncio.run(second.open())  # the directory is free again: a second start succeeds
    assert second.directory_lock.held
    asyncio.run(second.close())


def test_the_node_command_refuses_a_directory_in_use_with_one_line(tmp_path):
    directory = tmp_path / "haproxy"
    holder = DirectoryLock(directory)
    holder.acquire()
    try:
        result = CliRunner().invoke(main, ["node", "--bootstrap", "127.0.0.1:1", "--node-id", "n", "--agent-ip",
                                           "10.0.0.1", "--roles", "haproxy", "--haproxy-dir", str(directory)])
    finally:
        holder.release()
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: {in_use(directory, os.getpid())}\n"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    directory = tmp_path / "haproxy"
    code = (f"from appliers.haproxy.directory_lock import DirectoryLock; DirectoryLock({str(directory)!r}).acquire(); "
            "print('held', flush=True); import time; time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline() == "held\n"
        with pytest.raises(DirectoryInUse) as refused:
            DirectoryLock(directory).acquire()
        assert str(refused.value) == in_use(directory, other.pid)
    finally:
        other.kill()
        other.wait()
    lock = DirectoryLock(directory)
    lock.acquire()  # the kernel released it with the process: nothing to clean up by hand
    lock.release()
