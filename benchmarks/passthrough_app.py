"""The two apps the pass-through benchmark serves with gunicorn: ``bare`` and ``wrapped``.

Both are Kinto built from the ini named by ``KINTO_INI``, the same way
``kinto_attachment_mw.wsgi`` builds it (same settings, same logging); ``wrapped`` is then
wrapped by the middleware, ``bare`` is not. Built on first use, in each gunicorn worker::

    KINTO_INI=kinto.ini gunicorn --pythonpath benchmarks passthrough_app:bare

The memory backend lives in each worker's own memory, so each worker creates the
benchmark's bucket, collection and record for itself when it builds its app: whichever
worker answers, the record is there.
"""

from __future__ import annotations

import base64
import os

from pyramid.paster import get_appsettings, setup_logging
from webob import Request

from kinto_attachment_mw.wsgi import load_app, without_plugin_include

BUCKET_PATH = "/v1/buckets/b"
COLLECTION_PATH = BUCKET_PATH + "/collections/c"
RECORD_PATH = COLLECTION_PATH + "/records/r"
USER = b"alice:secret"
AUTHORIZATION = "Basic " + base64.b64encode(USER).decode()


def build_bare(ini_path: str):
    """Kinto as ``load_app`` builds it, without the wrapper."""
    import kinto

    ini_path = os.path.abspath(ini_path)
    setup_logging(ini_path)
    app_settings = get_appsettings(ini_path, name="main")
    return kinto.main(app_settings.global_conf, **without_plugin_include(app_settings))


def seed(kinto_app) -> None:
    """The bucket, collection and small record every request of the benchmark is about."""
    for path, body in (
        (BUCKET_PATH, b"{}"),
        (COLLECTION_PATH, b"{}"),
        (RECORD_PATH, b'{"data": {"title": "small"}}'),
    ):
        request = Request.blank(path, method="PUT", headers={"Authorization": AUTHORIZATION})
        request.body = body
        request.content_type = "application/json"
        status = request.get_response(kinto_app).status_int
        if status not in (200, 201):
            raise RuntimeError(f"seeding: PUT {path} answered {status}")


def __getattr__(name: str):
    ini_path = os.environ.get("KINTO_INI", "kinto.ini")
    if name == "bare":
        app = build_bare(ini_path)
        seed(app)
    elif name == "wrapped":
        app = load_app(ini_path)
        seed(app.app)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = app
    return app
