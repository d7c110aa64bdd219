"""One haproxy node per `--haproxy-dir`: an exclusive lock on a file in the directory.

Two nodes on one directory would overwrite each other's haproxy.cfg and master socket, and
the second one's start stops the first one's HAProxy as a leftover (process.py). So the
haproxy role holds `flock(LOCK_EX)` on ``<directory>/node.lock`` from its open to its close,
and a second node is refused with one line naming the directory and the holder's pid.

flock, not a pid file: the kernel releases it when the holder's process dies, however it
dies, so a killed node never leaves a stale lock behind. The file holds the holder's pid only
for the message; it is never deleted (a process could be locking the old file while another
creates a new one).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE_NAME = "node.lock"


class DirectoryInUse(Exception):
    """Another process holds the directory's lock; the message is the one-line error."""

    def __init__(self, directory: str | Path, pid: int | None):
        holder = f"another wayfinder node (pid {pid})" if pid else "another wayfinder node"
        super().__init__(f"--haproxy-dir {directory} is in use by {holder}: two haproxy nodes on one "
                         "directory would overwrite each other's config and master socket; give each node its own")
        self.directory, self.pid = str(directory), pid


class DirectoryLock:
    """`acquire` (DirectoryInUse when another process holds it, never waits), `release`."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by HAProxy (O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DirectoryInUse(self.directory, holder_pid(self.path)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def check_free(directory: str | Path) -> None:
    """DirectoryInUse when a node holds `directory`'s lock now; creates nothing (a missing
    directory or lock file is free). A shared lock, so that two checks never refuse each other."""
    path = Path(directory) / LOCK_FILE_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DirectoryInUse(directory, holder_pid(path)) from None
    finally:
        os.close(fd)  # also releases the shared lock


def holder_pid(path: Path) -> int | None:
    """The pid the holder wrote; None when it is not (yet) there."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


__all__ = ["DirectoryInUse", "DirectoryLock", "LOCK_FILE_NAME", "check_free", "holder_pid"]
