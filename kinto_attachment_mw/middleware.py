"""The dispatcher: decide from method and path whether a request is ours; pass the rest
to the wrapped Kinto app untouched."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from webob import Request

from . import cors, errors
from .kinto_api import INTERNAL_MARKER, KintoClient, RecordPath
from .locks import RecordLocks, locks_from_settings
from .service import ServiceEndpoints
from .serving import FileServer
from .settings import Settings, parse_settings
from .storage import LocalStorage, Storage, storage_from_settings
from .uploads import AttachmentEndpoint

logger = logging.getLogger(__name__)

ATTACHMENT_PATH = re.compile(
    r"^(?:/v1)?/buckets/(?P<bucket>[^/]+)/collections/(?P<collection>[^/]+)"
    r"/records/(?P<record>[^/]+)/attachment$"
)
ATTACHMENT_METHODS = "POST, DELETE, OPTIONS"


class AttachmentMiddleware:
    """Adds ``.../records/{rid}/attachment`` to a Kinto WSGI app.

    ``settings`` is the ini section's mapping (``kinto.attachment.*`` keys), or already
    parsed :class:`~kinto_attachment_mw.settings.Settings`.
    """

    def __init__(
        self,
        app,
        settings: Mapping | Settings,
        storage: Storage | None = None,
        locks: RecordLocks | None = None,
    ):
        self.app = app
        self.settings = settings if isinstance(settings, Settings) else parse_settings(settings)
        self.storage = storage or storage_from_settings(self.settings)
        self.locks = locks or locks_from_settings(self.settings.locks)
        self.endpoint = AttachmentEndpoint(
            self.settings, self.storage, KintoClient(app), self.locks
        )
        self.service = ServiceEndpoints(
            self.storage, self.settings.extra_base_url, self.settings.readonly
        )
        self.file_server = None
        if self.settings.serve_path and isinstance(self.storage, LocalStorage):
            self.file_server = FileServer(
                self.storage, self.settings.serve_path, self.settings.default_policy
            )
            self._serve_prefix = self.settings.serve_path + "/"

    @property
    def registry(self):
        """Kinto's registry, for callers that expect the app they wrapped."""
        return self.app.registry

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.endswith("/attachment"):
            match = ATTACHMENT_PATH.match(path)
            if match is not None and not environ.get(INTERNAL_MARKER):
                record = RecordPath(match["bucket"], match["collection"], match["record"])
                return self._respond(environ, start_response, self._attachment, record)
        elif path in ServiceEndpoints.paths:
            if environ.get("REQUEST_METHOD") == "GET":
                return self._respond(environ, start_response, self._service)
        elif self.file_server is not None and path.startswith(self._serve_prefix):
            return self._respond(environ, start_response, self.file_server)
        return self.app(environ, start_response)

    def _attachment(self, request: Request, record: RecordPath):
        method = request.method
        if method == "POST":
            return self.endpoint.upload(request, record)
        if method == "DELETE":
            return self.endpoint.remove(request, record)
        if method == "OPTIONS":
            return cors.preflight(request, self.settings.cors_origins)
        raise errors.method_not_allowed(ATTACHMENT_METHODS)

    def _service(self, request: Request):
        return self.service(request, self.app)

    def _respond(self, environ, start_response, handler, *args):
        request = Request(environ)
        try:
            response = handler(request, *args)
        except errors.AttachmentError as error:
            response = error.response()
        except errors.KintoAnswer as answer:
            response = answer.response
        except errors.StorageUnavailable as error:
            logger.error("Attachment storage failed: %s", error)
            response = errors.storage_unavailable().response()
        except Exception:
            # Last resort: a bug must still answer in Kinto's envelope, never a server's page.
            logger.exception("Unexpected error on %s %s", request.method, request.path_info)
            response = errors.error_response(500, errors.UNDEFINED, "Internal server error.")
        cors.add_cors_headers(request, response, self.settings.cors_origins)
        return response(environ, start_response)
