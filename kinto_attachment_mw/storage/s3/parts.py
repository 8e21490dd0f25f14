"""The parts of a multipart upload: their size; their buffers and checksum are
:mod:`..buffers`' (the GCS writer's chunks use them too).

boto3 reads a part through :class:`PartBody`, a view of its buffer, never a copy. Its
CRC32 is computed here: by itself, botocore would send it as a trailer over HTTPS, after
copying the part into a ``BytesIO``.
"""

from __future__ import annotations

from ..buffers import PartBody, PartBuffer, crc32_checksum

__all__ = ["MAX_PARTS", "MIN_PART_SIZE", "PartBody", "PartBuffer", "crc32_checksum", "part_size"]

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
