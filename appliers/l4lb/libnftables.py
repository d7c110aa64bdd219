"""The in-process libnftables seam: run nft text, get (rc, stdout, stderr) back.

Why ctypes and not the `pip-nftables` wheel: we need six C calls. The wheel is an unofficial
copy of Debian's binding (1.0.2 vintage) whose wheel drops a stray `__init__.py` into the root
of site-packages; Debian's `python3-nftables` is not importable from the venv. Both load the same
`libnftables.so.1` (Debian `libnftables1`) through ctypes anyway, so owning the 40 lines means one
dependency less and full control over where the context lives: a netlink socket belongs to the
network namespace of the thread that opens it, so `Nft()` must be created on the thread that
will use it (see kernel.py).

Text syntax only: libnftables 1.0.6 segfaulted on JSON batches that declare concatenated maps
with an integer field (reference kernel-dns-haproxy.md 1.5). JSON is used only for *reading*.
"""

from __future__ import annotations

import ctypes

OUTPUT_JSON = 1 << 4  # NFT_CTX_OUTPUT_JSON in <nftables/libnftables.h>
OUTPUT_TERSE = 1 << 11  # NFT_CTX_OUTPUT_TERSE: list sets and maps without their elements

_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libnftables.so.1")  # raises OSError when libnftables1 is missing
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
        lib.nft_ctx_output_get_flags.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).restype = ctypes.c_int
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).restype = ctypes.c_char_p
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _lib = lib
    return _lib


class Nft:
    """One libnftables context. Not thread-safe: use it from the thread that created it."""

    def __init__(self) -> None:
        self._lib = _load()
        self._ctx = self._lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT
        if not self._ctx:
            raise OSError("nft_ctx_new failed")
        # Capture stdout/stderr in memory instead of letting the library print them.
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)
        self._base_flags = self._lib.nft_ctx_output_get_flags(self._ctx)

    def run(self, text: str, flags: int = 0) -> tuple[int, str, str]:
        """Run one buffer (a whole file's worth of commands is one transaction)."""
        self._lib.nft_ctx_output_set_flags(self._ctx, self._base_flags | flags)
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
        # Each get returns what was written since the previous get, so always drain both.
        out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
        err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        return rc, out, err

    def close(self) -> None:
        if self._ctx:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None
