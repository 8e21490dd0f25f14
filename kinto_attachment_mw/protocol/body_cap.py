"""Bounded memory before authorization, on every route.

Kinto reads a request's body whole before it says who the caller is (a batch, a record
write), and so does the middleware where it checks one. A body that cannot be an upload
(anything but the multipart ``POST`` on ``.../attachment`` and the tus ``PATCH`` on
``.../attachment/uploads/{id}``, which stream under their own limits) is therefore
capped at ``kinto.attachment.max_request_body_bytes`` here, first thing in the
dispatcher: over it by its ``Content-Length``, 413 before a byte is read; a chunked body
is read up to the cap and refused with 413 past it (what was read goes on with a
``Content-Length``). So an anonymous 100 MiB ``/v1/batch`` costs a worker nothing.

A chunked record write is not read here: the middleware asks Kinto whether the caller may
write before it reads one (see :mod:`..writes.verdict_first`); its body is capped while
the middleware reads it instead (:class:`CappedInput`).
"""

from __future__ import annotations

import io

from . import errors
from .paths import Kind, route_of

#: tus ``PATCH`` URLs (``.../attachment/uploads/{id}``): uploads, with their own limits.
_TUS_UPLOADS = "/attachment/uploads/"
_CHUNK = 64 * 1024


def may_be_upload(method: str, path: str) -> bool:
    if method == "PATCH":
        return _TUS_UPLOADS in path
    if method != "POST" or not path.endswith("/attachment"):
        return False
    route = route_of(path)
    return route is not None and route.kind is Kind.ATTACHMENT


def refusal_of_body(environ: dict, limit: int) -> errors.AttachmentError | None:
    """The 413 (or the 400 of a broken chunked body) this request gets for its body
    alone, else ``None``; a chunked body within the cap is read, and put back."""
    length = environ.get("CONTENT_LENGTH", "")
    # A body without length is one only where the server ends its stream (gunicorn):
    # elsewhere WSGI readers, WebOb and Kinto included, take it as empty.
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and bool(
        environ.get("wsgi.input_terminated")
    )
    if not length and not chunked:
        return None
    if may_be_upload(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")):
        return None
    if length:
        return too_large(limit) if length.isdigit() and int(length) > limit else None
    if _is_record_write(environ):
        environ["wsgi.input"] = CappedInput(environ["wsgi.input"], limit)
        return None
    return _read_capped(environ, limit)


class CappedInput:
    """A body stream that ends the request with 413 once more than ``limit`` bytes were
    read from it (for a body of unknown length that only the middleware reads)."""

    def __init__(self, stream, limit: int):
        self.stream = stream
        self.limit = limit
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        room = self.limit + 1 - self.read_bytes
        data = self.stream.read(room if size is None or size < 0 else min(size, room))
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise too_large(self.limit)
        return data


def read_capped_input(environ: dict) -> None:
    """Read a capped body of unknown length whole (413 past the cap), and put it back with
    its length, before a reader that would spool it to a temporary file (WebOb) does."""
    stream = environ.get("wsgi.input")
    if not isinstance(stream, CappedInput):
        return
    buffer = io.BytesIO()
    while chunk := stream.read(_CHUNK):
        buffer.write(chunk)
    environ["wsgi.input"] = io.BytesIO(buffer.getvalue())
    environ["CONTENT_LENGTH"] = str(buffer.tell())
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _is_record_write(environ: dict) -> bool:
    method = environ.get("REQUEST_METHOD", "GET")
    route = route_of(environ.get("PATH_INFO", "")) if method in ("PUT", "PATCH", "POST") else None
    if route is None:
        return False
    return route.kind is Kind.RECORD or (route.kind is Kind.RECORDS and method == "POST")


def _read_capped(environ: dict, limit: int) -> errors.AttachmentError | None:
    stream = environ["wsgi.input"]
    buffer = io.BytesIO()
    try:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            if buffer.tell() + len(chunk) > limit:
                return too_large(limit)
            buffer.write(chunk)
    except TimeoutError:
        return errors.AttachmentError(
            408,
            errors.Errno.UNDEFINED,
            "The request body stopped arriving: send it again.",
            error="Request Timeout",
        )
    except (OSError, ValueError) as error:  # a client gone, a broken chunked encoding
        return errors.invalid_body(
            f"The chunked body ended early or is malformed ({str(error)[:80]}): send it whole."
        )
    environ["wsgi.input"] = io.BytesIO(buffer.getvalue())
    environ["CONTENT_LENGTH"] = str(buffer.tell())
    environ["webob.is_body_seekable"] = True
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return None


def too_large(limit: int) -> errors.AttachmentError:
    return errors.AttachmentError(
        413,
        errors.Errno.REQUEST_TOO_LARGE,
        f"The request body is larger than {limit} bytes, the most this server reads for a "
        "request that is not a file upload: send less (split a batch in several), or "
        "upload files to their record's attachment URL.",
        error="Request Entity Too Large",
        details={"max_request_body_bytes": limit},
    )
