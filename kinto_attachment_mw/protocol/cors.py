"""CORS headers for the responses the middleware writes itself, mirroring Kinto's."""

from __future__ import annotations

from webob import Request, Response

from . import errors

EXPOSED = (
    "Backoff, Retry-After, Alert, Content-Length, Content-Type, ETag, Last-Modified, Location, "
    # Downloads: the file's name, for a page that saves what it fetched.
    "Content-Disposition, "
    # Resumable uploads: without these, a browser's tus client restarts from zero.
    "Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Tus-Resumable, "
    "Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm"
)
ALLOWED_METHODS = "GET,HEAD,POST,DELETE,OPTIONS"
MAX_AGE = "3600"


def allow_origin(cors_origins: tuple[str, ...], origin: str | None) -> str | None:
    if not origin:
        return None
    if "*" in cors_origins:
        return "*"
    return origin if origin in cors_origins else None


def add_cors_headers(request: Request, response: Response, cors_origins: tuple[str, ...]) -> None:
    allowed = allow_origin(cors_origins, request.headers.get("Origin"))
    if allowed and "Access-Control-Allow-Origin" not in response.headers:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = EXPOSED


def preflight(
    request: Request, cors_origins: tuple[str, ...], methods: str = ALLOWED_METHODS
) -> Response:
    """Answer ``OPTIONS .../attachment`` (Kinto itself knows no such route: 404)."""
    requested_method = request.headers.get("Access-Control-Request-Method")
    if not requested_method:
        return errors.validation_error(
            "header", "Access-Control-Request-Method", "Missing header"
        ).response()
    response = Response(status=200, body=b"", content_type=None)
    allowed = allow_origin(cors_origins, request.headers.get("Origin"))
    if allowed and requested_method.upper() in methods.split(","):
        requested_headers = request.headers.get("Access-Control-Request-Headers", "")
        headers = [h.strip() for h in requested_headers.split(",") if h.strip()]
        response.headers.update(
            {
                "Access-Control-Allow-Origin": allowed,
                "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": ",".join([*headers, *EXPOSED.split(", ")]),
                "Access-Control-Max-Age": MAX_AGE,
            }
        )
    return response
