"""Gzip compression on the way to storage, for ``gzipped = true``.

The upload is compressed as it streams (one gzip member, never the whole file in
memory); the compressed bytes are hashed and counted as they are stored, so the record
describes the stored file and ``original`` the uploaded one.
"""

from __future__ import annotations

import zlib

from .sink import HashingSink, Writable

GZIP_MIMETYPE = "application/x-gzip"
GZIP_SUFFIX = ".gz"
#: zlib's gzip wrapper (header and CRC trailer); the header's mtime is 0, so the same
#: upload always gives the same stored bytes, and the same hash.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_LEVEL = 6  # zlib's default: most of level 9's ratio, at a fraction of its CPU


def gzip_size_bound(size: int) -> int:
    """The most bytes ``size`` bytes can take once compressed: deflate stores what it
    cannot shrink, at a few bytes per block (zlib's ``deflateBound``), plus gzip's header
    and trailer."""
    return size + (size >> 11) + 64


class GzipSink:
    """Compresses what it is given into ``stored`` (a hashing sink of the stored bytes)."""

    def __init__(self, target: Writable):
        self.stored = HashingSink(target)
        self._compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _GZIP_WBITS)

    def write(self, chunk: bytes) -> None:
        compressed = self._compressor.compress(chunk)
        if compressed:
            self.stored.write(compressed)

    def finish(self) -> None:
        """Write the end of the gzip stream; call once, after the last :meth:`write`."""
        self.stored.write(self._compressor.flush())
