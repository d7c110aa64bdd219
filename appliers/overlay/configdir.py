"""The CNI config directory (`--overlay-dir`): read our files, write one atomically, remove one.

The directory is Wayfinder's: every ``*.conflist`` in it is one of ours (a file per overlay).
A write goes to a temporary file in the same directory, is flushed to disk, then renamed over
the old one, so the containerizer reads either the old config or the new, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from appliers.overlay.cni import CONFIG_SUFFIX


class ConfigDir:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, bytes]:
        if not self.path.is_dir():
            return {}
        return {entry.name: entry.read_bytes() for entry in sorted(self.path.iterdir())
                if entry.name.endswith(CONFIG_SUFFIX) and entry.is_file()}

    def write(self, name: str, content: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.path / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)
