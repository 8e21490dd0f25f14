"""The parts of a multipart upload: their size, their buffers, their checksum.

The two parts' buffers are mapped once per upload (anonymous ``mmap``) and then take
turns. Through ``malloc`` they would come from the heap as soon as glibc has freed one
block as large (its mmap threshold follows the largest block freed), and leave the heap
larger and fragmented after the upload; a mapping of its own is returned to the system
when dropped, and a page never written (a small file's) costs nothing. boto3 reads a part
through :class:`PartBody`, a view of its buffer, never a copy. Its CRC32 is computed here:
by itself, botocore would send it as a trailer over HTTPS, after copying the part into a
``BytesIO``.
"""

from __future__ import annotations

import base64
import mmap
import zlib

MiB = 1024 * 1024
#: S3 accepts at most this many parts in one upload, each of 5 MiB at least (but the
#: last) and 5 GiB at most.
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
#: Without an upper bound of the file's size, parts double in size every this many: from
#: 5 MiB, 10,000 of them hold 4.8 TiB (S3's largest object is 5 TiB).
_PARTS_PER_SIZE = 1_000


def part_size(base: int, size_hint: int | None, number: int) -> int:
    """The size of part ``number`` (from 1) of a file of at most ``size_hint`` bytes.

    ``base`` when 10,000 parts of it hold ``size_hint`` bytes, else the smallest whole
    number of MiB that does: memory follows the part size, so parts are no larger than
    the file needs. Without a bound, ``base`` for the first thousand parts, doubling every
    thousand after that.
    """
    if size_hint is None:
        size = base << (number - 1) // _PARTS_PER_SIZE
    else:
        size = max(base, -(-size_hint // (MAX_PARTS * MiB)) * MiB)
    return min(size, MAX_PART_SIZE)


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

    def body(self) -> PartBody:
        return PartBody(memoryview(self._memory)[: self.filled])


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
