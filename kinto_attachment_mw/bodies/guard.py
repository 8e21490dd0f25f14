"""The WSGI layer in front of the dispatcher: every request with a body, whoever reads it,
gets a :class:`~.watch.BodyWatch`; its answer is held until the application returns, so
that a body cut for its slowness is answered 408 in Kinto's envelope (not with whatever
the reader made of a short body), and a connection whose body was not read to the end
is closed rather than drained (gunicorn would read up to 64 KiB of it for up to 5 s in
the request's thread, then up to 2 s more in its main loop, which accepts nothing
meanwhile)."""

from __future__ import annotations

from webob import Request

from ..config.body_limits import BodyLimits
from ..protocol import cors, errors
from ..protocol.body_cap import may_be_upload
from ..protocol.client import INTERNAL_MARKER
from .connection import close_after_answer, meter, server_socket, shut_reads
from .watch import BodyWatch, MeteredInput
from .watchdog import WATCHDOG, Watchdog


class BodyGuard:
    def __init__(
        self,
        app,
        limits: BodyLimits,
        cors_origins: tuple[str, ...] = (),
        watchdog: Watchdog = WATCHDOG,
    ):
        self.app = app
        self.limits = limits
        self.cors_origins = cors_origins
        self.watchdog = watchdog

    def __call__(self, environ, start_response):
        watch = self._watch(environ)
        if watch is None:
            return self.app(environ, start_response)
        answer = _HeldAnswer(start_response)
        try:
            body = self.app(environ, answer)
        finally:
            watch.end()
            self.watchdog.discard(watch)
        if watch.expired:
            _close(body)
            return self._too_slow(environ, answer, watch.expired)
        if not watch.finished:
            sock = server_socket(environ)
            if sock is not None:
                close_after_answer(start_response)
                shut_reads(sock)
        return answer.release(body)

    def _watch(self, environ: dict) -> BodyWatch | None:
        """A watch over this request's body, ``None`` when it has none to wait for."""
        if environ.get(INTERNAL_MARKER) or environ.get("webob.is_body_seekable"):
            return None  # a body already in memory
        raw = environ.get("CONTENT_LENGTH") or ""
        if raw.isdigit():
            length = int(raw)
            if length == 0:
                return None
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            length = None
        else:
            return None
        sock = server_socket(environ)
        # Only a body that can be an upload (one the cap lets through) has no deadline,
        # only the rate: any other, whatever its path looks like, is capped, and must
        # arrive within the deadline.
        upload = may_be_upload(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        watch = BodyWatch(
            self.limits,
            length,
            upload=upload,
            cut=(lambda: shut_reads(sock)) if sock is not None else None,
        )
        if sock is not None:
            meter(environ, watch)
        environ["wsgi.input"] = MeteredInput(environ["wsgi.input"], watch)
        if watch.cut is not None:
            self.watchdog.add(watch)
        return watch

    def _too_slow(self, environ, answer: _HeldAnswer, reason: str):
        if answer.started:
            return []  # too late to answer: the connection closes
        response = errors.body_too_slow(reason).response()
        cors.add_cors_headers(Request(environ), response, self.cors_origins)
        close_after_answer(answer.start_response)
        return response(environ, answer.start_response)


def _close(body) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


class _HeldAnswer:
    """A ``start_response`` that holds the status and headers until the application has
    returned, so that the answer can still be replaced."""

    def __init__(self, start_response):
        self.start_response = start_response
        self.started = False
        self._held: tuple | None = None
        self._write = None

    def __call__(self, status, headers, exc_info=None):
        if self.started:
            return self.start_response(status, headers, exc_info)
        self._held = (status, headers, exc_info)
        return self._write_now

    def _write_now(self, data: bytes) -> None:
        """WSGI's ``write()``: the answer goes out as it is now."""
        self.release(None)
        self._write(data)

    def release(self, body):
        if not self.started:
            self.started = True
            if self._held is not None:
                self._write = self.start_response(*self._held)
        return body
