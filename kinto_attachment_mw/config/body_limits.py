"""How much, how slowly and for how long a client may send a request body
(``kinto.attachment.max_request_body_bytes``, ``body_*``), so that neither a large body
nor a slow one can hold a worker before Kinto has said who the caller is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .values import parse_count, parse_size, parse_timeout

_PREFIX = "kinto.attachment."


@dataclass(frozen=True)
class BodyLimits:
    """``max_request_body_bytes`` caps a body that cannot be an upload (a record write, a
    batch, a flush), refused with 413 before it is read. Every body must arrive at
    ``min_bytes_per_second`` on average once ``grace_seconds`` have passed, and a capped
    body within ``deadline_seconds`` in all."""

    max_request_body_bytes: int = 8 * 1024 * 1024
    min_bytes_per_second: int = 1024
    grace_seconds: float = 5.0
    deadline_seconds: float = 60.0


#: Each setting once: its short name, the field it fills, its parser.
_FIELDS = (
    ("max_request_body_bytes", "max_request_body_bytes", parse_size),
    ("body_min_bytes_per_second", "min_bytes_per_second", parse_count),
    ("body_grace_seconds", "grace_seconds", parse_timeout),
    ("body_deadline_seconds", "deadline_seconds", parse_timeout),
)
BODY_LIMIT_NAMES = tuple(name for name, _, _ in _FIELDS)


def parse_body_limits(values: Mapping[str, object]) -> BodyLimits:
    given = {
        field: parse(_PREFIX + name, values[name])
        for name, field, parse in _FIELDS
        if name in values
    }
    return BodyLimits(**given)
