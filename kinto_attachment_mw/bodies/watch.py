"""One request body's progress, and the stream the application reads it through.

The rate is averaged over the time the application spends reading the body, as
Kestrel's ``MinRequestBodyDataRate`` does: time spent elsewhere (storing a part of an
upload, asking Kinto) is not the client's. It is checked once ``grace_seconds`` of
reading have passed. A body that cannot be an upload must also have arrived
``deadline_seconds`` after the request began.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pyramid.httpexceptions import HTTPRequestTimeout

from ..config.body_limits import BodyLimits

#: Replaced by tests, which age a body by moving this clock rather than by waiting.
clock = time.monotonic


class BodyTooSlow(TimeoutError, HTTPRequestTimeout):
    """The body missed its rate or its deadline; ``str()`` says which, for the client.

    Also an HTTP error to Pyramid: raised inside Kinto (which reads most bodies itself),
    it is answered as one (then replaced by the guard's 408), not logged with its
    traceback as a crash of Kinto's, which any client could cause at will."""

    def __init__(self, reason: str):
        HTTPRequestTimeout.__init__(self, detail=reason)
        TimeoutError.__init__(self, reason)


class BodyWatch:
    """Bytes and reading time of one request body, and whether it has failed its limits.

    The reading thread calls :meth:`begin_read` and :meth:`end_read` around each read;
    the watchdog calls :meth:`check`, which may ``cut`` the connection's read side, only
    while a read is under way (a cut then makes that read return)."""

    def __init__(
        self,
        limits: BodyLimits,
        length: int | None,
        upload: bool,
        cut: Callable[[], None] | None = None,
    ):
        self.limits = limits
        self.length = length
        now = clock()
        self.deadline = None if upload else now + limits.deadline_seconds
        self.cut = cut
        #: Counted by the server connection's meter, when there is one (see connection.py).
        self.received = 0
        self.metered = False
        self.delivered = 0
        self.finished = False
        self.expired: str | None = None
        self._read_seconds = 0.0
        self._reading_since: float | None = None
        self._ended = False
        self._lock = threading.Lock()

    def begin_read(self) -> None:
        with self._lock:
            if self.expired:
                raise BodyTooSlow(self.expired)
            self._reading_since = clock()

    def end_read(self, size: int, asked: bool) -> None:
        """After a read that returned ``size`` bytes (``asked``: some were asked for)."""
        with self._lock:
            now = clock()
            if self._reading_since is not None:
                self._read_seconds += now - self._reading_since
                self._reading_since = None
            self.delivered += size
            done = self.length is not None and self.delivered >= self.length
            if done or (asked and size == 0 and self.length is None):
                self.finished = True
            if not self.expired and not self.finished:
                self.expired = self._verdict(now, rate_known=True)
            if self.expired:
                raise BodyTooSlow(self.expired)

    def check(self, now: float) -> bool:
        """The watchdog's look: whether this body has failed (the read side then cut, if
        a read is under way)."""
        with self._lock:
            if self._ended or self.finished:
                return False
            if not self.expired:
                self.expired = self._verdict(now, rate_known=self.metered)
            if self.expired and self._reading_since is not None and self.cut is not None:
                self.cut()
            return self.expired is not None

    def end(self) -> None:
        """The request is over: the watchdog must not touch its connection any more."""
        with self._lock:
            self._ended = True

    def _verdict(self, now: float, rate_known: bool) -> str | None:
        limits = self.limits
        if self.deadline is not None and now > self.deadline:
            return f"The request body did not arrive within {limits.deadline_seconds:g} seconds"
        reading = self._read_seconds
        if self._reading_since is not None:
            reading += now - self._reading_since
        arrived = max(self.received, self.delivered)
        if (
            rate_known
            and limits.min_bytes_per_second
            and reading > limits.grace_seconds
            and arrived < limits.min_bytes_per_second * reading
        ):
            return (
                "The request body arrived slower than"
                f" {limits.min_bytes_per_second} bytes per second"
            )
        return None


class MeteredInput:
    """``wsgi.input`` as the application reads it: each read timed and counted by a
    :class:`BodyWatch`, which raises :class:`BodyTooSlow` once the body has failed."""

    def __init__(self, stream, watch: BodyWatch):
        self._stream = stream
        self._watch = watch

    def read(self, size: int | None = -1) -> bytes:
        return self._timed(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._timed(self._stream.readline, size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            if hint is not None and 0 < hint <= sum(map(len, lines)):
                return lines

    def __iter__(self):
        return iter(self.readline, b"")

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def _timed(self, read, size) -> bytes:
        watch = self._watch
        watch.begin_read()
        try:
            data = read() if size is None or size < 0 else read(size)
        except BaseException:
            watch.end_read(0, asked=False)
            raise
        watch.end_read(len(data), asked=size != 0)
        return data
