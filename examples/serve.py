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

from kinto_attachment_mw.wsgi import application as kinto

PREFIX = "demo"
demo_files = DirectoryApp(str(Path(__file__).resolve().parent / "demo"), index_page="index.html")


def application(environ, start_response):
    """``/demo/...`` from ``examples/demo/``, everything else to Kinto."""
    request = Request(environ)
    if request.path_info == f"/{PREFIX}":
        return HTTPMovedPermanently(location=f"{request.script_name}/{PREFIX}/")(
            environ, start_response
        )
    if request.path_info.startswith(f"/{PREFIX}/"):
        request.path_info_pop()
        return demo_files(request.environ, start_response)
    return kinto(environ, start_response)
