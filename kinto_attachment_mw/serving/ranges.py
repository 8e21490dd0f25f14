"""``Range: bytes=...`` as RFC 9110 (section 14) reads it, for one file of known size.

One range is served (206); an unsatisfiable one is refused (416); several ranges, another
unit or a malformed header are ignored and the whole file is served (200), which the RFC
allows and which every client handles (a multipart/byteranges answer is not worth its
rare use here).
"""

from __future__ import annotations

import re

_ONE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    """No byte of the range is in the file: 416."""


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of the one range ``header`` asks for, ``None`` to serve the
    whole file; raises :class:`Unsatisfiable`."""
    match = _ONE_RANGE.match(header)
    if match is None:
        return None  # several ranges, another unit, or malformed: ignored
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    stop = size if not last else min(int(last) + 1, size)
    return start, stop
