"""The dispatcher: decide from method and path whether a request is ours; pass the rest
to the wrapped Kinto app untouched. Also where the parts are wired together, and where
every error becomes an answer in Kinto's envelope."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from webob import Request

from .bodies import BodyGuard
from .config import Settings, parse_settings
from .files.guard import AttachmentGuard
from .files.remover import FileRemover
from .locks import RecordLocks, locks_from_settings
from .protocol import cors, cross_site, errors
from .protocol.body_cap import refusal_of_body
from .protocol.client import INTERNAL_MARKER, KintoClient, KintoResponse
from .protocol.numbers import malformed_length
from .protocol.paths import Kind, RecordPath, Route, route_of
from .protocol.slow_clients import limit_idle_reads
from .resumable.endpoint import ResumableUploads
from .resumable.protocol import UPLOADS_SEGMENT, upload_route
from .serving.downloads import Downloads
from .serving.file_server import FileServer
from .serving.service_endpoints import ServiceEndpoints
from .storage import LocalStorage, Storage, StorageUnavailable, storage_from_settings
from .upload.endpoint import AttachmentEndpoint
from .writes.batch import BatchEndpoint
from .writes.record_writes import KintoWrites
from .writes.screening import handles, may_affect_files
from .writes.verdict_first import refusal_before_reading

logger = logging.getLogger(__name__)

ATTACHMENT_METHODS = "GET, HEAD, POST, DELETE, OPTIONS"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class AttachmentMiddleware:
    """Adds ``.../records/{rid}/attachment`` to a Kinto WSGI app.

    ``settings`` is the ini section's mapping (``kinto.attachment.*`` keys), or already
    parsed :class:`~kinto_attachment_mw.config.Settings`.
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
        _warn_of_untrusted_hosts(self.settings)
        # Every body, also those passed straight to Kinto, has a minimum rate and a deadline.
        self._guarded = BodyGuard(
            self._dispatch, self.settings.body_limits, self.settings.cors_origins
        )
        self.storage = storage or storage_from_settings(self.settings)
        self.locks = locks or locks_from_settings(self.settings.locks)
        self.kinto = kinto = KintoClient(app)
        self.remover = FileRemover(self.storage, self.locks, self.settings)
        self.endpoint = AttachmentEndpoint(
            self.settings, self.storage, kinto, self.remover, self.locks
        )
        guard = AttachmentGuard(self.storage, self.locks)
        self.writes = KintoWrites(
            app,
            kinto,
            guard,
            self.remover,
            self.locks,
            self.settings.max_removals_per_request,
            self.settings.public_address,
        )
        self.batch = BatchEndpoint(app, self.writes)
        self.resumable = (
            ResumableUploads(self.settings, self.storage, kinto, self.endpoint, self.locks)
            if self.settings.resumable.enabled
            else None
        )
        self.downloads = Downloads(
            self.storage,
            kinto,
            self.settings.download_url_seconds,
            self.settings.download_accel_path,
        )
        self.service = ServiceEndpoints(
            self.storage,
            self.settings.extra_base_url,
            self.settings.readonly,
            self.settings.default_policy.extensions,
            self.resumable.capability if self.resumable is not None else None,
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
        malformed = malformed_length(environ)
        if malformed is not None:
            return self._respond(environ, start_response, _raise, malformed)
        return self._guarded(environ, start_response)

    def _dispatch(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        too_large = refusal_of_body(environ, self.settings.body_limits.max_request_body_bytes)
        if too_large is not None:
            return self._respond(environ, start_response, _raise, too_large)
        if self.resumable is not None and UPLOADS_SEGMENT in path:
            found = upload_route(path)
            route = route_of(found[0]) if found else None
            if route is not None and route.kind is Kind.ATTACHMENT:
                limit_idle_reads(environ, self.settings.body_timeout_seconds)
                return self._respond(
                    environ, start_response, self._tus_upload, route.record, found[1]
                )
        if self.file_server is not None and path.startswith(self._serve_prefix):
            return self._respond(environ, start_response, self.file_server)
        if method in _READS:
            if path in ServiceEndpoints.paths:
                if method == "GET":
                    return self._respond(environ, start_response, self._service)
            elif path.endswith("/attachment") and not environ.get(INTERNAL_MARKER):
                route = route_of(path)
                if route is not None and route.kind is Kind.ATTACHMENT:
                    return self._respond(environ, start_response, self._attachment, route.record)
            return self.app(environ, start_response)
        if environ.get(INTERNAL_MARKER):
            return self.app(environ, start_response)
        route = route_of(path)
        if route is None:
            return self.app(environ, start_response)
        if route.kind is Kind.ATTACHMENT:
            limit_idle_reads(environ, self.settings.body_timeout_seconds)
            return self._respond(environ, start_response, self._attachment, route.record)
        if not handles(method, route.kind):
            return self.app(environ, start_response)
        refusal = refusal_before_reading(self.kinto, environ, method, route)
        if refusal is not None:
            return self._respond(environ, start_response, _relay, refusal)
        limit_idle_reads(environ, self.settings.body_timeout_seconds)
        try:
            affects_files = may_affect_files(environ, method, route.kind)
        except TimeoutError:
            timed_out = errors.body_timed_out(self.settings.body_timeout_seconds)
            return self._respond(environ, start_response, _raise, timed_out)
        if affects_files:
            # Kinto's own answer goes back as it is, CORS headers included.
            return self._respond(environ, start_response, self._kinto_write, route, own=False)
        return self.app(environ, start_response)

    def _attachment(self, request: Request, record: RecordPath):
        method = request.method
        if method not in _READS:
            self._refuse_cross_site(request)
        tus = self.resumable is not None and "Tus-Resumable" in request.headers
        if method == "POST" and tus:
            return self.resumable.create(request, record)
        if method == "POST":
            return self.endpoint.upload(request, record)
        if method in ("GET", "HEAD"):
            return self.downloads(request, record)
        if method == "DELETE":
            return self.endpoint.remove(request, record)
        # tus discovery: an OPTIONS that is no browser's preflight (no Origin), or says tus.
        discovery = "Tus-Resumable" in request.headers or "Origin" not in request.headers
        if method == "OPTIONS" and self.resumable is not None and discovery:
            return self.resumable.options(request)  # tus discovery
        if method == "OPTIONS":
            return cors.preflight(request, self.settings.cors_origins)
        raise errors.method_not_allowed(ATTACHMENT_METHODS)

    def _tus_upload(self, request: Request, record: RecordPath, upload_id: str):
        if request.method not in _READS:
            self._refuse_cross_site(request)
        return self.resumable.upload(request, record, upload_id)

    def _refuse_cross_site(self, request: Request) -> None:
        """A write on an attachment URL that another site made a browser send: 403,
        before anything is read (see :mod:`.protocol.cross_site`)."""
        cross_site.check(request, self.settings.cors_origins)

    def _kinto_write(self, request: Request, route: Route):
        if route.kind is Kind.BATCH:
            return self.batch(request)
        return self.writes(request, route)

    def _service(self, request: Request):
        return self.service(request, self.app)

    def _respond(self, environ, start_response, handler, *args, own: bool = True):
        """Run ``handler``; errors become Kinto-shaped answers. CORS headers are added to
        the middleware's own answers (``own``) and to every error."""
        request = Request(environ)
        add_cors = True
        try:
            response = handler(request, *args)
        except errors.AttachmentError as error:
            response = error.response()
        except errors.KintoAnswer as answer:
            response = answer.response
        except StorageUnavailable as error:
            logger.error("Attachment storage failed: %s", error)
            response = errors.storage_unavailable().response()
        except TimeoutError:  # the client stopped sending a body the middleware reads
            response = errors.body_timed_out(self.settings.body_timeout_seconds).response()
        except Exception:
            # Last resort: a bug must still answer in Kinto's envelope, never a server's page.
            logger.exception(
                "Unexpected error on %s %r", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            response = errors.internal_error().response()
        else:
            add_cors = own
        if add_cors:
            cors.add_cors_headers(request, response, self.settings.cors_origins)
        return response(environ, start_response)


def _warn_of_untrusted_hosts(settings: Settings) -> None:
    """Private locations are absolute URLs that readers follow with their credentials:
    without ``kinto.http_host`` they name whatever host the uploading request said."""
    policies = [settings.default_policy, *settings.resource_policies.values()]
    if settings.public_address.host is None and any(policy.private for policy in policies):
        logger.warning(
            "kinto.attachment.private: set kinto.http_host to the host clients reach the API"
            " at: private files' locations are built from it, otherwise from each upload's"
            " Host header, which the uploader chooses (a location on another host would"
            " receive the credentials of readers who follow it)"
        )


def _relay(request: Request, answer: KintoResponse):
    raise errors.KintoAnswer(answer.response)


def _raise(request: Request, error: errors.AttachmentError):
    raise error
