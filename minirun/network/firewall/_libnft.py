"""libnftables through ctypes: run an nft script in-process, no fork/exec of `nft`.

The library parses the script exactly as `nft -f` does and sends it to the
kernel as one netlink batch, i.e. one atomic transaction. A context is created
and freed per call: it is cheap, and it is not thread-safe to share.
"""
from __future__ import annotations

import ctypes

from minirun.network.firewall.failure import CommandFailed, first_error_line

NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_JSON = 1 << 4
NFT_CTX_OUTPUT_TERSE = 1 << 11  # no set elements: listings stay cheap with big maps

_CANDIDATES = ("libnftables.so.1", "/usr/lib/x86_64-linux-gnu/libnftables.so.1")


class LibNft:
    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.restype = None
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.restype = None
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]

    def run(self, script: str, *, json: bool = False, terse: bool = False) -> str:
        ctx = self.lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not ctx:
            raise CommandFailed("cannot create an nftables context")
        try:
            self.lib.nft_ctx_buffer_output(ctx)
            self.lib.nft_ctx_buffer_error(ctx)
            flags = (NFT_CTX_OUTPUT_JSON if json else 0) | (NFT_CTX_OUTPUT_TERSE if terse else 0)
            if flags:
                self.lib.nft_ctx_output_set_flags(ctx, flags)
            rc = self.lib.nft_run_cmd_from_buffer(ctx, script.encode())
            out = (self.lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
            if rc != 0:
                err = (self.lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
                raise CommandFailed(first_error_line(err))
            return out
        finally:
            self.lib.nft_ctx_free(ctx)


def load() -> LibNft | None:
    """The library, or None when it is missing (then `nft -f -` is used)."""
    for name in _CANDIDATES:
        try:
            return LibNft(ctypes.CDLL(name, use_errno=True))
        except (OSError, AttributeError):
            continue
    return None
