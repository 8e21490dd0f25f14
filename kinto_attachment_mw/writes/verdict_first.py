"""A large record write is authorized by Kinto before its body is read.

To tell whether a record write can touch ``attachment``, the middleware reads its body.
For a large body (or one of unknown length) it first asks Kinto whether the caller may
write there at all, with the caller's credentials and writing nothing: a refusal (401,
403, 404) is answered at once and not a byte of the body is read, so that an anonymous
100 MB ``PUT`` costs the server no memory. Small bodies skip the question: reading them
costs less than asking.
"""

from __future__ import annotations

import uuid

from ..protocol.client import KintoClient, KintoResponse
from ..protocol.paths import Kind, RecordPath, Route

#: Bodies up to this size are read without asking first.
LARGE_BODY = 1024 * 1024


def refusal_before_reading(
    kinto: KintoClient, environ: dict, method: str, route: Route
) -> KintoResponse | None:
    """Kinto's refusal of this record write, asked before its body is read; ``None`` when
    the body is small or the caller may write."""
    if method not in ("PUT", "PATCH", "POST") or route.kind not in (Kind.RECORD, Kind.RECORDS):
        return None
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit() and int(length) <= LARGE_BODY:
        return None
    return refusal_of_write(kinto, environ, route)


def refusal_of_write(kinto: KintoClient, environ: dict, route: Route) -> KintoResponse | None:
    """Kinto's refusal (401, 403, 404) of a write to this record, or to a new record of
    these records; ``None`` when the caller may write. Also asked before a body the
    middleware refuses is answered with 400, since Kinto says who may write first."""
    if route.kind is Kind.RECORD:
        record = route.record
    else:  # a POST creates a record: may the caller create one here?
        record = RecordPath(route.bucket_id, route.collection_id, uuid.uuid4().hex)
    verdict = kinto.probe_write(environ, record)
    return None if verdict.status == 412 else verdict
