"""A client that stops sending its body mid-way must not hold a worker's thread forever.

Under gunicorn the middleware gives the connection's socket an idle time-out
(``body_timeout_seconds``) before it reads a body itself: each read waits that long at
most, then the request ends with 408 and what it stored is removed. Other servers apply
their own (waitress: ``channel_timeout``). A client that keeps a byte trickling in never
trips it: the minimum rate of :mod:`..bodies` bounds that one.
"""

from __future__ import annotations

import contextlib


def limit_idle_reads(environ: dict, seconds: float) -> None:
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.settimeout(seconds)
