"""A gunicorn entry point for tests: the application ``KINTO_INI`` describes, except that
a request carrying ``X-Test-Unchecked: 1`` goes straight to Kinto, past the middleware,
as a write path that checks nothing would. Never for anything but tests."""

from __future__ import annotations

import os

from kinto_attachment_mw.wsgi import load_app

HEADER = "X-Test-Unchecked"
_ENVIRON_KEY = "HTTP_" + HEADER.upper().replace("-", "_")

_built = []  # built on first use: the test importing this module names it only


def application(environ, start_response):
    if not _built:
        _built.append(load_app(os.environ["KINTO_INI"]))
    middleware = _built[0]
    if environ.get(_ENVIRON_KEY) == "1":
        return middleware.app(environ, start_response)
    return middleware(environ, start_response)
