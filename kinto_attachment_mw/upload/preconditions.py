"""The client's own ``If-Match`` / ``If-None-Match`` on an upload or a removal, honoured
with the rules of Kinto's record endpoints before the body is read."""

from __future__ import annotations

import re

from ..protocol import errors
from ..protocol.client import environ_key
from ..protocol.errors import Errno


def check_client_preconditions(environ: dict, existing: dict | None, etag: str | None) -> None:
    """Honour the client's own ``If-Match`` / ``If-None-Match`` before reading the body.

    The record write is conditional on the version seen by the probe anyway; this lets a
    client say which version it means to replace, with the rules of Kinto's record
    endpoints: values are ``*`` or quoted integers, ``"0"`` means no precondition,
    ``If-None-Match`` only acts as ``*``.
    """
    if_match = _precondition(environ, "If-Match")
    if_none_match = _precondition(environ, "If-None-Match")
    if existing is None:
        failed = bool(if_match)  # any If-Match needs the record to exist
    elif if_none_match == "*":
        failed = True
    else:
        failed = if_match not in (None, "*") and existing.get("last_modified") != if_match
    if failed:
        raise errors.AttachmentError(
            412,
            Errno.MODIFIED_MEANWHILE,
            "Resource was modified meanwhile",
            details={} if existing is None else {"existing": existing},
            headers={"ETag": etag} if etag else {},
        )


def _precondition(environ: dict, header: str) -> int | str | None:
    value = environ.get(environ_key(header), "").strip()
    if not value:
        return None
    if value == "*":
        return value
    if not _QUOTED_INTEGER.match(value):
        raise errors.validation_error(
            "header", header, "The value should be integer between double quotes."
        )
    return int(value[1:-1]) or None


_QUOTED_INTEGER = re.compile(r'^"[0-9]+"$')
