"""The one pass over an upload's bytes: count, hash and store each chunk as it arrives,
compressing it first for ``gzipped = true``.

With gzip, the upload is compressed as it streams (one gzip member, never the whole file
in memory); the compressed bytes are hashed and counted as they are stored, so the record
describes the stored file and ``original`` the uploaded one.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

from ..protocol import errors


class ByteSink(Protocol):
    """Where the bytes of an upload go next: a storage writer, a compressor, a hasher."""

    def write(self, chunk: bytes) -> None: ...


class HeldHead:
    """Holds a file's first ``size`` bytes until they say what the file is: then
    ``start`` (given them) returns where all the bytes go. Nothing is stored before."""

    def __init__(self, start: Callable[[bytes], ByteSink], size: int):
        self._start = start
        self._size = size
        self._held = bytearray()
        self._sink: ByteSink | None = None

    def write(self, chunk: bytes) -> None:
        if self._sink is not None:
            self._sink.write(chunk)
            return
        self._held += chunk
        if len(self._held) >= self._size:
            self.finish()

    def finish(self) -> None:
        """The file ended before its head was full: start with what there is."""
        if self._sink is None:
            held, self._held = bytes(self._held), bytearray()
            self._sink = self._start(held[: self._size])
            if held:
                self._sink.write(held)


class HashingSink:
    """Feeds a storage writer (or a compressor), keeping SHA-256 and size, and enforcing
    the size limit.

    Past the limit nothing more is stored. With ``count_oversize`` (a body of declared,
    hence bounded, length) the rest of the file is only counted, so that the refusal can
    give its exact size (:meth:`check_size`, once the body is read); without it (a chunked
    body), the upload stops there."""

    def __init__(self, writer: ByteSink, max_size_bytes: int = 0, count_oversize: bool = False):
        self.writer = writer
        self.max_size_bytes = max_size_bytes
        self.count_oversize = count_oversize
        self.size = 0
        self._sha256 = hashlib.sha256()

    @property
    def oversize(self) -> bool:
        return bool(self.max_size_bytes) and self.size > self.max_size_bytes

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.oversize:
            if not self.count_oversize:
                raise errors.too_large(self.max_size_bytes, more_than=self.max_size_bytes)
            return
        self._sha256.update(chunk)
        self.writer.write(chunk)

    def check_size(self) -> None:
        """Refuse, with its size, a file that went past the limit."""
        if self.oversize:
            raise errors.too_large(self.max_size_bytes, size=self.size)

    @property
    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


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

    def __init__(self, target: ByteSink):
        self.stored = HashingSink(target)
        self._compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _GZIP_WBITS)

    def write(self, chunk: bytes) -> None:
        compressed = self._compressor.compress(chunk)
        if compressed:
            self.stored.write(compressed)

    def finish(self) -> None:
        """Write the end of the gzip stream; call once, after the last :meth:`write`."""
        self.stored.write(self._compressor.flush())
