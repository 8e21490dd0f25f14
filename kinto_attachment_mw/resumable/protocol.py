"""What tus 1.0 says on the wire: versions, extensions, ``Upload-Metadata`` and
``Upload-Checksum``, and answers that carry ``Tus-Resumable``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from dataclasses import dataclass

from webob import Request, Response

from ..protocol import errors
from ..protocol.json_depth import too_deep
from ..protocol.numbers import whole_number

VERSION = "1.0.0"
#: Where an upload lives: ``{record URL}/attachment/uploads/{id}``.
UPLOADS_SEGMENT = "/attachment/uploads/"
EXTENSIONS = "creation,creation-with-upload,expiration,termination,checksum"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
OFFSET_STREAM = "application/offset+octet-stream"
#: Request headers browsers must be allowed to send, response headers they must see
#: (without ``Location`` and ``Upload-Offset`` a browser restarts from zero).
REQUEST_HEADERS = (
    "Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum, "
    "Upload-Defer-Length, Upload-Concat, X-HTTP-Method-Override, Content-Type, "
    "Authorization"
)
EXPOSED_HEADERS = (
    "Location, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, "
    "Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, ETag"
)


def method_of(request: Request) -> str:
    """``X-HTTP-Method-Override`` for clients that can only send POST."""
    override = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    return override if request.method == "POST" and override else request.method


def check_version(request: Request) -> None:
    if request.headers.get("Tus-Resumable") != VERSION:
        raise tus_error(412, "Tus-Resumable: only 1.0.0 is supported.", {"Tus-Version": VERSION})


def tus_error(status: int, message: str, headers: dict[str, str] | None = None):
    """An error in Kinto's envelope, with ``Tus-Resumable``."""
    errno = _ERRNOS.get(status, errors.Errno.INVALID_PARAMETERS)
    return errors.AttachmentError(
        status,
        errno,
        message,
        error=_PHRASES.get(status),
        headers={"Tus-Resumable": VERSION, **(headers or {})},
    )


#: tus's own statuses, which Python's table does not know.
_PHRASES = {460: "Checksum Mismatch"}
_ERRNOS = {
    404: errors.Errno.MISSING_RESOURCE,
    409: errors.Errno.MODIFIED_MEANWHILE,
    429: errors.Errno.TOO_MANY_REQUESTS,
    507: errors.Errno.BACKEND,
}
#: Seconds a client is told to wait when the spool is full (room frees as others finish).
SPOOL_FULL_RETRY_SECONDS = 60


def too_many_pending(pending: int, first_expires_in: float):
    """429: the principal holds as many unfinished uploads as allowed."""
    return tus_error(
        429,
        f"{pending} unfinished uploads are pending, the most allowed: finish some, or "
        "terminate them (DELETE on their URL), to make room for a new one.",
        {"Retry-After": str(max(1, math.ceil(first_expires_in)))},
    )


def spool_full(length: int):
    """507: the unfinished uploads of everyone already declared as many bytes as the
    server keeps for them."""
    return tus_error(
        507,
        f"No room for {length} more bytes of unfinished uploads on this server: retry later.",
        {"Retry-After": str(SPOOL_FULL_RETRY_SECONDS)},
    )


def upload_gone():
    """404: no such upload (never created, terminated, expired, or finished)."""
    return tus_error(404, "No such upload.")


def tus_response(status: int = 204, **headers: str) -> Response:
    response = Response(status=status, content_type=None)
    response.headers["Tus-Resumable"] = VERSION
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def parse_metadata(raw: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (a value may be
    absent). Values are read as UTF-8."""
    found: dict[str, str] = {}
    for pair in raw.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            found[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise tus_error(400, f"Upload-Metadata: {key!r} is not base64 of UTF-8.") from None
    return found


@dataclass(frozen=True)
class Checksum:
    """``Upload-Checksum``: the algorithm and the digest this request's bytes must have."""

    algorithm: str
    digest: bytes

    @classmethod
    def of(cls, raw: str | None) -> Checksum | None:
        if not raw:
            return None
        name, _, encoded = raw.strip().partition(" ")
        if name not in CHECKSUMS:
            raise tus_error(400, f"Upload-Checksum: {name!r} is not one of sha1, sha256.")
        try:
            return cls(name, base64.b64decode(encoded.strip(), validate=True))
        except binascii.Error:
            raise tus_error(400, "Upload-Checksum: the digest is not base64.") from None

    def hasher(self):
        return CHECKSUMS[self.algorithm]()


def declared_int(request: Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    number = whole_number(raw)
    if number is None:
        raise tus_error(400, f"{name}: a non-negative whole number, got {raw!r}.")
    return number


def resume_offset(state, size: int) -> int:
    """The offset a client continues from: the part's size, except when it is full (the
    file not stored yet, or storing it failed): then where the last piece began (else
    one byte short), so that the client sends it again, which stores the file. Never
    ``Upload-Length`` before the record holds the file: clients take that as done."""
    if size < state.length:
        return size
    last = state.final_piece_at
    return last if last is not None and last < state.length else max(0, state.length - 1)


def upload_route(path: str) -> tuple[str, str] | None:
    """``(attachment path, upload id)`` of an upload URL, else ``None``."""
    head, sep, upload_id = path.rpartition(UPLOADS_SEGMENT)
    if not sep or not head or "/" in upload_id:
        return None
    return head + "/attachment", upload_id


def json_field(metadata: dict[str, str], name: str) -> dict | None:
    if name not in metadata:
        return None
    try:
        value = json.loads(metadata[name])
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict) or too_deep(value):
        raise tus_error(400, f"Upload-Metadata: {name!r} must be a JSON object.")
    return value


def http_date(moment: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(moment))
