"""Reading a request body in bounded chunks, straight from ``wsgi.input``."""

from __future__ import annotations

from collections.abc import Iterator

from ..protocol import errors
from ..protocol.errors import Errno
from ..protocol.numbers import whole_number

CHUNK_SIZE = 1024 * 1024


class TruncatedBody(Exception):
    """The client sent fewer bytes than it announced, or went away."""


def declared_length(environ: dict) -> int | None:
    """The body length the client announced; ``None`` when it streams (chunked)."""
    raw = environ.get("CONTENT_LENGTH", "")
    if raw not in ("", None):
        length = whole_number(str(raw))
        if length is None:
            raise errors.bad_request(Errno.INVALID_PARAMETERS, "Invalid Content-Length header")
        return length
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() or environ.get(
        "wsgi.input_terminated"
    ):
        return None
    raise errors.AttachmentError(
        411, Errno.MISSING_CONTENT_LENGTH, "A Content-Length header is required."
    )


def iter_body(
    environ: dict,
    length: int | None,
    chunk_size: int = CHUNK_SIZE,
    idle_seconds: float = 60.0,
) -> Iterator[bytes]:
    """Yield the body in chunks of at most ``chunk_size``, never past ``length``.

    Raises :class:`TruncatedBody` when the stream ends before ``length`` bytes, or when the
    server reports the client went away; 408 when no byte came for ``idle_seconds`` (see
    :mod:`..protocol.slow_clients`).
    """
    stream = environ["wsgi.input"]
    remaining = length
    while remaining is None or remaining > 0:
        size = chunk_size if remaining is None else min(chunk_size, remaining)
        try:
            chunk = stream.read(size)
        except TimeoutError:
            raise errors.body_timed_out(idle_seconds) from None
        except Exception as error:  # noqa: BLE001 - servers raise their own types here
            # A dropped connection is an OSError; gunicorn's broken chunked framing is a
            # ParseException of its own. For the client both are a body that did not arrive.
            raise TruncatedBody(str(error) or type(error).__name__) from error
        if not chunk:
            if remaining is None:
                return
            raise TruncatedBody(f"body ended {remaining} bytes before its Content-Length")
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
