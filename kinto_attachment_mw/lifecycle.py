"""Kinto's own writes and deletes that reach attachments: learn beforehand which files
they affect, let Kinto decide, and remove files only after Kinto confirmed.

Covers record PUT/PATCH/POST (tamper protection, removal of ``attachment``), deletes of
a record, of the records of a collection, of collections and of buckets (singular and
plural), and ``POST /v1/__flush__``. Batches reuse :meth:`Lifecycle.plan` per sub-request.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from webob import Request, Response

from .guard import (
    AttachmentGuard,
    PatchStyle,
    attachment_after,
    patch_style,
    touches_attachment,
)
from .kinto_api import KintoClient, ListingRefused, RecordPath
from .locks import RecordLocks
from .multipart import FILE_FIELD
from .releasing import FileReleaser
from .routes import Kind, Route

#: Query parameters of a plural delete that page or shape its answer, not filter it.
_PAGING_PARAMS = frozenset({"_limit", "_token", "_sort", "_fields"})
_HAS_ATTACHMENT = [("has_" + FILE_FIELD, "true"), ("_fields", FILE_FIELD)]

#: For plural deletes: which id in Kinto's answer (``data: [{id, deleted}]``) says that a
#: record's file may go.
_DELETED_LEVEL = {
    Kind.RECORDS: "record_id",
    Kind.COLLECTIONS: "collection_id",
    Kind.BUCKETS: "bucket_id",
}


@dataclass
class Pending:
    """Files to remove once Kinto confirms the change that drops their records."""

    attachments: dict[RecordPath, dict] = field(default_factory=dict)
    deleted_level: str | None = None  # plural delete: only what Kinto lists as deleted
    flush: bool = False  # every file goes, once Kinto answered 202
    planned_at: float = field(default_factory=time.time)

    def confirmed(self, status: int, body: object) -> dict[RecordPath, dict]:
        if not 200 <= status < 300:
            return {}
        if self.deleted_level is None:
            return self.attachments
        listed = body.get("data") if isinstance(body, dict) else None
        deleted = {item.get("id") for item in listed or () if isinstance(item, dict)}
        return {
            record: attachment
            for record, attachment in self.attachments.items()
            if getattr(record, self.deleted_level) in deleted
        }


def handles(method: str, kind: Kind) -> bool:
    """Whether a request of this method on this kind of resource can affect files
    (attachment URLs have their own endpoint)."""
    if method == "DELETE":
        return kind not in (Kind.BATCH, Kind.FLUSH)
    if method in ("PUT", "PATCH"):
        return kind is Kind.RECORD
    if method == "POST":
        return kind in (Kind.RECORDS, Kind.FLUSH, Kind.BATCH)
    return False


def may_affect_files(environ: dict, method: str, kind: Kind) -> bool:
    """A cheap first look, so that the everyday record write passes straight to Kinto:
    a PATCH or POST whose body never spells ``attachment`` (nor escapes a character that
    could spell it) cannot touch it, and neither can a PUT without ``data``. A body in
    another charset than UTF-8 is not searched as bytes. The body is read whole, as Kinto
    reads it anyway, and put back."""
    if method == "DELETE" or kind in (Kind.FLUSH, Kind.BATCH):
        return True
    content_type = environ.get("CONTENT_TYPE", "")
    if patch_style(content_type) is PatchStyle.JSON_PATCH or not _is_utf8(content_type):
        return True
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isdigit():
        return True  # chunked or unknown: take the careful way
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) == int(length):
        # Said so, WebOb (Kinto's request) seeks this stream instead of copying it once
        # more. Not for a body cut short: WebOb's copy is what notices it.
        environ["webob.is_body_seekable"] = True
    if b"\\" in body:
        return True
    return (b'"data"' if method == "PUT" else FILE_FIELD.encode()) in body


class Lifecycle:
    def __init__(
        self,
        app,
        kinto: KintoClient,
        guard: AttachmentGuard,
        releaser: FileReleaser,
        locks: RecordLocks,
    ):
        self.app = app
        self.kinto = kinto
        self.guard = guard
        self.releaser = releaser
        self.locks = locks

    def __call__(self, request: Request, route: Route) -> Response:
        # Read whole before any lock: a slow client must not hold up other writers.
        body = request_json(request) if request.method != "DELETE" else None
        if route.kind is Kind.RECORD:
            # One writer of a record at a time, uploads included (see :mod:`.locks`).
            lock = self.locks.hold(self.real_record_uri(request.environ, route))
        else:
            lock = contextlib.nullcontext()
        with lock:
            pending = self.plan(
                request.environ,
                request.method,
                route,
                request.GET.items(),
                patch_style(request.headers.get("Content-Type")),
                body,
            )
            response = request.get_response(self.app)
            if pending is not None:
                answer = json_of(response) if pending.deleted_level else None
                self.settle(pending, response.status_code, answer)
        return response

    def settle(
        self, pending: Pending, status: int, body: object, keep: frozenset[str] = frozenset()
    ) -> None:
        """Kinto answered: remove what its answer confirms is no longer referenced, but
        files at the ``keep`` locations."""
        if pending.flush:
            if status == 202:
                self.releaser.flush()
            return
        for owner, attachment in pending.confirmed(status, body).items():
            if attachment.get("location") not in keep:
                self.releaser.release(attachment, owner, planned_at=pending.planned_at)

    def plan(
        self,
        environ: dict,
        method: str,
        route: Route,
        query: Iterable[tuple[str, str]],
        style: PatchStyle,
        body: object,
    ) -> Pending | None:
        """Check a write against tampering and learn which files it would orphan.

        Raises the 400 of a forged ``attachment``; returns what to remove once Kinto
        confirms (``None``: nothing).
        """
        if route.kind is Kind.FLUSH:
            return Pending(flush=True)
        if method != "DELETE" and not touches_attachment(method, style, body):
            return None
        route = self._real_bucket(environ, route)
        if method == "POST":
            new = attachment_after(method, style, body, None)
            record_id = (body.get("data") or {}).get("id") if isinstance(body, dict) else None
            owner = (
                RecordPath(route.bucket_id, route.collection_id, record_id).uri
                if isinstance(record_id, str)
                else None  # Kinto picks the id: a copy for sure
            )
            self.guard.check(new, None, owner)
            return None
        if route.kind is Kind.RECORD:
            return self._plan_record(environ, method, route.record, style, body)
        try:
            attachments = dict(self._beneath(environ, route, list(query)))
        except ListingRefused:
            return None  # Kinto will most likely refuse the delete too; remove nothing
        return Pending(attachments, _DELETED_LEVEL.get(route.kind))

    def _plan_record(
        self, environ: dict, method: str, record: RecordPath, style: PatchStyle, body: object
    ) -> Pending | None:
        current = self.kinto.get_record(environ, record)
        previous = current["data"].get(FILE_FIELD) if current else None
        if method != "DELETE":
            new = attachment_after(method, style, body, current)
            self.guard.check(new, previous, record.uri)
            if _location(new) == _location(previous):
                return None  # same file, or still none
        if not isinstance(previous, dict):
            return None
        return Pending({record: previous})

    def _beneath(
        self, environ: dict, route: Route, query: list[tuple[str, str]]
    ) -> Iterable[tuple[RecordPath, dict]]:
        """The attachments of every record a delete of ``route`` would remove, found with
        Kinto's ``has_attachment`` filter, so cost follows attachments, not records."""
        filters = [(name, value) for name, value in query if name not in _PAGING_PARAMS]
        bucket_id, collection_id = route.bucket_id, route.collection_id
        if route.kind in (Kind.RECORDS, Kind.COLLECTION):
            records = Route(Kind.RECORDS, bucket_id, collection_id)
            own_filters = filters if route.kind is Kind.RECORDS else []
            for item in self.kinto.list_all(
                environ, records.url_path, own_filters + _HAS_ATTACHMENT
            ):
                attachment = item.get(FILE_FIELD)
                if isinstance(attachment, dict) and isinstance(item.get("id"), str):
                    yield RecordPath(bucket_id, collection_id, item["id"]), attachment
            return
        if route.kind in (Kind.COLLECTIONS, Kind.BUCKET):
            parent = Route(Kind.COLLECTIONS, bucket_id)
            child_kind = Kind.COLLECTION
        else:
            parent = Route(Kind.BUCKETS)
            child_kind = Kind.BUCKET
        own_filters = filters if route.kind is not Kind.BUCKET else []
        children = [
            item["id"]
            for item in self.kinto.list_all(
                environ, parent.url_path, [*own_filters, ("_fields", "id")]
            )
            if isinstance(item.get("id"), str)
        ]
        for child_id in children:
            child = (
                Route(child_kind, bucket_id, child_id)
                if child_kind is Kind.COLLECTION
                else Route(child_kind, child_id)
            )
            yield from self._beneath(environ, child, [])

    def real_record_uri(self, environ: dict, route: Route) -> str:
        """The record's URI under the caller's real bucket: the name of its lock."""
        return self._real_bucket(environ, route).record.uri

    def _real_bucket(self, environ: dict, route: Route) -> Route:
        """``default`` is an alias; files were stored under the caller's real bucket."""
        if route.bucket_id != "default":
            return route
        real_id = self.kinto.default_bucket_id(environ)
        return route.in_bucket(real_id) if real_id else route


def _location(attachment: object) -> object:
    return attachment.get("location") if isinstance(attachment, dict) else None


def _is_utf8(content_type: str) -> bool:
    """Whether a body is UTF-8 (or ASCII), as it is unless a charset says otherwise."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower().replace("-", "").replace("_", "")
            return charset in ("utf8", "usascii", "ascii")
    return True


def request_json(request: Request) -> object:
    """The request's JSON, decoded as Kinto decodes it (the declared charset); ``None``
    when it is not JSON (Kinto will refuse it)."""
    try:
        return request.json_body if request.body else None
    except (ValueError, LookupError):  # bad JSON, bad bytes for the charset, unknown charset
        return None


def json_of(response: Response) -> object:
    """Kinto's JSON answer, ``None`` when it is not JSON."""
    try:
        return json.loads(response.body)
    except ValueError:
        return None
