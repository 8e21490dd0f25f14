"""What the middleware may do to gunicorn's connection, found through the WSGI environ
and the ``start_response`` gunicorn gives (checked against gunicorn 27): count the bytes
its reads take from the socket, shut the socket's read side, have the answer say
``Connection: close``. Under another server each of these does nothing, and a body is
only accounted as the application reads it."""

from __future__ import annotations

import contextlib
import socket

from .watch import BodyWatch


class _MeteredSocket:
    """The connection's socket as gunicorn's body reader sees it: every ``recv`` is
    counted into the current request's watch, as the bytes arrive, even while the
    reader keeps them to fill a larger read."""

    __slots__ = ("_sock", "watch")

    def __init__(self, sock):
        self._sock = sock
        self.watch: BodyWatch | None = None

    def recv(self, size: int, *flags: int) -> bytes:
        data = self._sock.recv(size, *flags)
        watch = self.watch
        if watch is not None:
            watch.received += len(data)
        return data

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def server_socket(environ: dict) -> socket.socket | None:
    return environ.get("gunicorn.socket")


def meter(environ: dict, watch: BodyWatch) -> None:
    """Count into ``watch`` what gunicorn reads from the socket for this body (nothing
    when its reader is not the one expected: another server, HTTP/2)."""
    reader = getattr(environ.get("wsgi.input"), "reader", None)
    unreader = getattr(reader, "unreader", None)  # a body with a length, or until EOF
    if unreader is None:
        unreader = getattr(getattr(reader, "req", None), "unreader", None)  # chunked
    sock = getattr(unreader, "sock", None)
    if sock is None or not hasattr(sock, "recv"):
        return
    if not isinstance(sock, _MeteredSocket):  # kept for the connection's next requests
        sock = _MeteredSocket(sock)
        unreader.sock = sock
    sock.watch = watch
    watch.metered = True


def shut_reads(sock: socket.socket) -> None:
    """A read blocked on ``sock`` returns at once, with what was already received, and
    so does gunicorn's own drain of the socket when it closes the connection."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def close_after_answer(start_response) -> None:
    """Have gunicorn answer with ``Connection: close`` and not read what is left of the
    body (it ignores that header from the application)."""
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()
