"""What ``make serve`` runs: Kinto with attachments, plus the demo page at ``/demo/``.

The demo's static files are served only here, in front of the usual entry point, so the
middleware itself gains no extra paths::

    KINTO_INI=examples/kinto.ini gunicorn --pythonpath examples serve:application
"""

from __future__ import annotations

from pathlib import Path

from webob import Request
from webob.exc import HTTPMovedPermanently
from webob.static import DirectoryApp

from kinto_attachment_mw.protocol.paths import wsgi_path
from kinto_attachment_mw.wsgi import application as kinto

PREFIX = "demo"
demo_files = DirectoryApp(str(Path(__file__).resolve().parent / "demo"), index_page="index.html")


def application(environ, start_response):
    """``/demo/...`` from ``examples/demo/``, everything else to Kinto."""
    # WebOb's ``path_info`` raises on bytes that are not UTF-8: Kinto answers such a
    # path (400 in its envelope), and the demo's paths are read decoded.
    path = wsgi_path(environ)
    if path is None:
        return kinto(environ, start_response)
    if path == f"/{PREFIX}":
        location = f"{Request(environ).script_name}/{PREFIX}/"
        return HTTPMovedPermanently(location=location)(environ, start_response)
    if path.startswith(f"/{PREFIX}/"):
        environ = dict(environ)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/{PREFIX}"
        environ["PATH_INFO"] = environ["PATH_INFO"][len(PREFIX) + 1 :]
        return demo_files(environ, start_response)
    return kinto(environ, start_response)
