"""Serving stored files (GET and HEAD) so that ``location`` URLs resolve without a web
server in front. Production should let nginx or a CDN do this."""

from __future__ import annotations

import mimetypes
import os
import posixpath

from webob import Request, Response
from webob.static import FileIter

from . import errors
from .settings import Policy
from .storage.local import TEMP_PREFIX, LocalStorage, UnsafePath


class FileServer:
    def __init__(self, storage: LocalStorage, prefix: str, policy: Policy):
        self.storage = storage
        self.prefix = prefix + "/"
        self.mimetypes = policy.mimetypes

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
            handle = open(path, "rb")  # noqa: SIM115 (closed by FileIter)
        except (UnsafePath, OSError):
            raise _not_found() from None
        response = Response(
            app_iter=FileIter(handle),
            content_type=self._content_type(key),
            content_length=stat.st_size,
            last_modified=stat.st_mtime,
            accept_ranges="bytes",
            conditional_response=True,
            charset=None,
        )
        response.etag = f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"
        response.cache_control = "public, max-age=3600"
        return response

    def _content_type(self, key: str) -> str:
        extension = posixpath.splitext(key)[1].lower()
        if extension in self.mimetypes:
            return self.mimetypes[extension]
        guessed, encoding = mimetypes.guess_type(key, strict=False)
        if encoding == "gzip":
            return "application/x-gzip"
        return guessed if guessed and not encoding else "application/octet-stream"


def _not_found() -> errors.AttachmentError:
    return errors.AttachmentError(
        404, errors.MISSING_RESOURCE, "The resource you are looking for could not be found."
    )
