"""Serving stored files (GET and HEAD) so that ``location`` URLs resolve without a web
server in front (production should let nginx or a CDN do this), and the byte-serving
that permission-checked downloads share (:mod:`.downloads`)."""

from __future__ import annotations

import os
import stat

from webob import Request, Response

from ..config import Policy
from ..protocol import errors
from ..protocol.paths import wsgi_path
from ..storage.base import is_hidden, is_private_key
from ..storage.local import LocalStorage, UnsafePath
from ..upload.naming import mimetype_for
from .headers import add_safety_headers, media_type
from .ranges import Unsatisfiable, byte_range

_BLOCK = 256 * 1024


class FileServer:
    def __init__(self, storage: LocalStorage, prefix: str, policy: Policy):
        self.storage = storage
        self.prefix = prefix + "/"
        self.policy = policy

    def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed("GET, HEAD")
        key = wsgi_path(request.environ)
        if key is None or not key.startswith(self.prefix):
            raise errors.not_found()  # not UTF-8: no stored name is spelled so
        key = key[len(self.prefix) :]
        if is_hidden(key) or is_private_key(key):
            # Temporary files and metadata; private files, downloaded through their record
            # only, as Kinto allows.
            raise errors.not_found()
        return serve_file(
            request,
            self.storage,
            key,
            media_type(mimetype_for(key, None, self.policy)),
            cache_control="public, max-age=3600",
        )


def serve_file(
    request: Request,
    storage: LocalStorage,
    key: str,
    content_type: str,
    etag: str | None = None,
    cache_control: str = "private, no-cache",
    disposition: str | None = None,
) -> Response:
    """The stored file ``key`` as a GET or HEAD answer: ``Range`` and conditional
    requests honoured, ``Content-Length`` sent, the body streamed from the open file.
    ``etag``: the file's identity (else its inode, size and time)."""
    try:
        # Opened here, so a file removed meanwhile is a 404 and not a broken body;
        # once open, the handle keeps serving it even if it is removed.
        handle = open(storage.path_of(key), "rb")  # noqa: SIM115 (closed below)
    except (UnsafePath, OSError):
        raise errors.not_found() from None
    try:
        response = _respond(request, handle, content_type, etag, cache_control)
        if disposition is not None:
            response.headers["Content-Disposition"] = disposition
        if isinstance(response.app_iter, _FileRange):
            handle = None  # the body owns it now
        return response
    finally:
        if handle is not None:
            handle.close()


def _respond(
    request: Request, handle, content_type: str, etag: str | None, cache_control: str
) -> Response:
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        raise errors.not_found()
    size = info.st_size
    response = Response(
        content_type=content_type,
        last_modified=info.st_mtime,
        accept_ranges="bytes",
        charset=None,
    )
    response.etag = etag or f"{info.st_ino:x}-{size:x}-{info.st_mtime_ns:x}"
    response.cache_control = cache_control
    add_safety_headers(response)  # on 304, 206, 416 and HEAD answers too

    if _not_modified(request, response):
        response.status = 304
        del response.content_type
        return response
    start, stop = 0, size
    if _range_applies(request, response):
        try:
            wanted = byte_range(request.headers["Range"], size)
        except Unsatisfiable:
            response.status = 416
            response.headers["Content-Range"] = f"bytes */{size}"
            response.content_length = 0
            return response
        if wanted is not None:
            start, stop = wanted
            response.status = 206
            response.content_range = (start, stop, size)
    if request.method == "GET":
        response.app_iter = _FileRange(handle, start, stop)
    response.content_length = stop - start  # after app_iter, which drops it
    return response


def _not_modified(request: Request, response: Response) -> bool:
    if "If-None-Match" in request.headers:  # ``*`` too: WebOb's AnyETag is falsy
        return response.etag in request.if_none_match
    since = request.if_modified_since
    return since is not None and response.last_modified <= since


def _range_applies(request: Request, response: Response) -> bool:
    """A Range is honoured unless If-Range names another version of the file."""
    if "Range" not in request.headers:
        return False
    if_range = request.headers.get("If-Range")
    return not if_range or if_range.strip('"') == response.etag


class _FileRange:
    """The bytes ``[start, stop)`` of an open file, closed by the server when done."""

    def __init__(self, handle, start: int, stop: int):
        self.handle = handle
        self.start = start
        self.stop = stop

    def __iter__(self):
        self.handle.seek(self.start)
        remaining = self.stop - self.start
        while remaining > 0:
            block = self.handle.read(min(_BLOCK, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block

    def close(self) -> None:
        self.handle.close()
