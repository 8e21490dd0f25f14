"""One ``PATCH``'s bytes into an upload's part file, all or nothing when they carry a
checksum, never past the declared length."""

from __future__ import annotations

import hmac

from webob import Request

from ..protocol import errors
from ..upload.body import TruncatedBody, declared_length, iter_body
from .protocol import Checksum, tus_error
from .spool import Spool, UploadState

_READ = 1024 * 1024


def append_piece(
    spool: Spool, state: UploadState, request: Request, start: int, idle_seconds: float
) -> int:
    """Add the request's bytes at ``start`` (dropping what the part holds past it: a
    piece sent again); the new offset. A checksum that does not match, or bytes past
    ``Upload-Length``, leave the upload at ``start``; a body cut short keeps what came
    (unless a checksum was to be checked) and is a 400."""
    checksum = Checksum.of(request.headers.get("Upload-Checksum"))
    hasher = checksum.hasher() if checksum else None
    environ = request.environ
    room = state.length - start
    written = 0
    with spool.appending(state.id) as part:
        if part.tell() > start:
            part.truncate(start)  # the piece not stored yet, sent again
        try:
            for chunk in iter_body(
                environ,
                declared_length(environ),
                _READ,
                idle_seconds,
            ):
                if written + len(chunk) > room:
                    part.truncate(start)
                    raise tus_error(400, f"More bytes than Upload-Length ({state.length}).")
                part.write(chunk)
                written += len(chunk)
                if hasher:
                    hasher.update(chunk)
        except (TruncatedBody, errors.AttachmentError) as error:
            part.flush()
            if hasher or written + start > state.length:
                part.truncate(start)  # unverifiable: none of it is kept
            if isinstance(error, TruncatedBody):
                raise tus_error(
                    400, f"The body ended early ({error}): HEAD gives the offset to go on from."
                ) from None
            raise
        if checksum and not hmac.compare_digest(hasher.digest(), checksum.digest):
            part.truncate(start)
            raise tus_error(460, "Upload-Checksum does not match: the bytes are dropped.")
    return start + written
