"""Serving stored files (GET and HEAD) so that ``location`` URLs resolve without a web
server in front. Production should let nginx or a CDN do this."""

from __future__ import annotations

import os

from webob import Request, Response

from . import errors
from .naming import mimetype_for
from .settings import Policy
from .storage.local import TEMP_PREFIX, LocalStorage, UnsafePath


class FileServer:
    def __init__(self, storage: LocalStorage, prefix: str, policy: Policy):
        self.storage = storage
        self.prefix = prefix + "/"
        self.policy = policy

    def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed("GET, HEAD")
        key = request.path_info[len(self.prefix) :]
        if any(segment.startswith(".") for segment in key.split("/")) or TEMP_PREFIX in key:
            raise _not_found()
        try:
            path = self.storage.path_of(key)
            stat = os.stat(path)
            if not os.path.isfile(path):
                raise _not_found()
        except (UnsafePath, OSError):
            raise _not_found() from None
        response = Response(
            app_iter=_FileBody(path),
            content_type=mimetype_for(key, None, self.policy),
            content_length=stat.st_size,
            last_modified=stat.st_mtime,
            accept_ranges="bytes",
            conditional_response=True,
            charset=None,
        )
        response.etag = f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"
        response.cache_control = "public, max-age=3600"
        # Uploaded content is served from Kinto's own origin: an SVG or HTML file must
        # not be able to run scripts there with the visitor's credentials.
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


class _FileBody:
    """Opens the file only when the body is actually sent (not for 304 or HEAD)."""

    def __init__(self, path: str):
        self.path = path

    def __iter__(self):
        return self.app_iter_range()

    def app_iter_range(self, seek: int | None = None, limit: int | None = None):
        with open(self.path, "rb") as handle:
            if seek:
                handle.seek(seek)
            remaining = None if limit is None else limit - (seek or 0)
            while remaining is None or remaining > 0:
                size = _BLOCK if remaining is None else min(_BLOCK, remaining)
                block = handle.read(size)
                if not block:
                    return
                if remaining is not None:
                    remaining -= len(block)
                yield block


_BLOCK = 256 * 1024


def _not_found() -> errors.AttachmentError:
    return errors.AttachmentError(
        404, errors.MISSING_RESOURCE, "The resource you are looking for could not be found."
    )
