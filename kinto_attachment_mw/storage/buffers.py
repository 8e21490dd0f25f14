"""Memory for the chunks of a file on its way to a storage service (S3's parts, GCS's
resumable chunks), and a file-like view of them for the HTTP clients.

Each upload maps its buffers once (anonymous ``mmap``) and then lets them take turns.
Through ``malloc`` they would come from the heap as soon as glibc has freed one block as
large (its mmap threshold follows the largest block freed), and leave the heap larger and
fragmented after the upload; a mapping of its own is returned to the system when dropped,
and a page never written (a small file's) costs nothing.
"""

from __future__ import annotations

import base64
import mmap
import zlib


def crc32_checksum(data: memoryview) -> str:
    """``ChecksumCRC32`` as S3 takes it: the big-endian CRC32, base64-encoded."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


class PartBuffer:
    """One part's bytes, gathered in memory mapped for this buffer alone."""

    def __init__(self, size: int):
        self.size = size
        self.filled = 0
        self._memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)

    def fill(self, data: memoryview) -> int:
        """Copy what fits of ``data`` after the bytes already there; how much did."""
        taken = min(len(data), self.size - self.filled)
        self._memory[self.filled : self.filled + taken] = data[:taken]
        self.filled += taken
        return taken

    def body(self, start: int = 0) -> PartBody:
        """The bytes filled, from ``start`` (what a service did not take of a chunk)."""
        return PartBody(memoryview(self._memory)[start : self.filled])


class PartBody:
    """The filled bytes of a :class:`PartBuffer` as boto3 reads a body: ``read`` hands out
    slices of the buffer, not copies, and ``seek`` rewinds for a retry. (boto3 takes
    ``bytes``, ``bytearray`` or a file, not a ``memoryview``.)"""

    def __init__(self, view: memoryview):
        self._view = view
        self._position = 0

    def __len__(self) -> int:
        return len(self._view)

    def read(self, size: int | None = -1) -> memoryview:
        start = self._position
        end = len(self._view) if size is None or size < 0 else min(start + size, len(self._view))
        self._position = max(start, end)
        return self._view[start:end]

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def checksum(self) -> str:
        return crc32_checksum(self._view)
