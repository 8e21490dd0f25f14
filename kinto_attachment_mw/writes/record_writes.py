"""Kinto's own writes and deletes that reach attachments: learn beforehand which files
they affect, let Kinto decide, and remove files only after Kinto confirmed.

Covers record PUT/PATCH/POST (tamper protection, removal of ``attachment``), deletes of
a record, of the records of a collection, of collections and of buckets (singular and
plural), and ``POST /v1/__flush__``. Batches reuse :meth:`KintoWrites.foresee` per
sub-request.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterable

from webob import Request, Response

from ..config.public_address import PublicAddress
from ..files.guard import AttachmentGuard
from ..files.locations import key_of
from ..files.remover import FileRemover
from ..locks import RecordLocks
from ..protocol.client import KintoClient, ListingRefused
from ..protocol.errors import AttachmentError, KintoAnswer
from ..protocol.paths import ATTACHMENT_FIELD, Kind, RecordPath, Route
from .files_to_remove import FilesToRemove
from .forwarding import checked_json, forward_no_body
from .patches import PatchStyle, attachment_after, patch_style, touches_attachment
from .screening import json_of
from .verdict_first import refusal_of_write

logger = logging.getLogger(__name__)

#: Query parameters of a plural delete that page or shape its answer, not filter it.
_PAGING_PARAMS = frozenset({"_limit", "_token", "_sort", "_fields"})
_HAS_ATTACHMENT = [("has_" + ATTACHMENT_FIELD, "true"), ("_fields", ATTACHMENT_FIELD)]

#: For plural deletes: which id in Kinto's answer (``data: [{id, deleted}]``) says that a
#: record's file may go.
_DELETED_LEVEL = {
    Kind.RECORDS: "record_id",
    Kind.COLLECTIONS: "collection_id",
    Kind.BUCKETS: "bucket_id",
}


class KintoWrites:
    """A write or delete that Kinto itself serves, with what it does to files: checked
    against tampering before, files removed after Kinto confirmed."""

    def __init__(
        self,
        app,
        kinto: KintoClient,
        guard: AttachmentGuard,
        remover: FileRemover,
        locks: RecordLocks,
        max_removals: int = 10_000,
        public_address: PublicAddress | None = None,
    ):
        self.app = app
        self.kinto = kinto
        self.guard = guard
        self.remover = remover
        self.locks = locks
        self.max_removals = max_removals
        self.public_address = public_address or PublicAddress()

    def __call__(self, request: Request, route: Route) -> Response:
        # Read whole before any lock: a slow client must not hold up other writers. What
        # goes on into Kinto is what was read here; Kinto reads no body of a delete or a
        # flush, so none goes on.
        if request.method == "DELETE" or route.kind is Kind.FLUSH:
            forward_no_body(request)
            body = None
        else:
            body = self._checked_body(request, route)
        style = patch_style(request.headers.get("Content-Type"))
        noted = self.note_copies(request.environ, request.method, route, style, body)
        if route.kind is Kind.RECORD:
            # One writer of a record at a time, uploads included (see :mod:`..locks`).
            lock = self.locks.hold(self.record_lock(request.environ, route))
        else:
            lock = contextlib.nullcontext()
        with lock:
            to_remove = self.foresee(
                request.environ, request.method, route, request.GET.items(), style, body, noted
            )
            response = request.get_response(self.app)
            if to_remove is not None:
                answer = json_of(response) if to_remove.deleted_level else None
                self.remove_confirmed(to_remove, response.status_code, answer)
        return response

    def _checked_body(self, request: Request, route: Route) -> object:
        """The body as Kinto reads it; a body refused for its form is refused after Kinto's
        own 401 or 403, in Kinto's order."""
        try:
            return checked_json(request)
        except AttachmentError as error:
            refusal = refusal_of_write(self.kinto, request.environ, route)
            if refusal is not None and refusal.status in (401, 403):
                raise KintoAnswer(refusal.response) from None
            raise error

    def remove_confirmed(
        self,
        to_remove: FilesToRemove,
        status: int,
        body: object,
        keep: frozenset[str] = frozenset(),
    ) -> None:
        """Kinto answered: remove what its answer confirms is no longer referenced, but
        the files stored under the ``keep`` keys."""
        if to_remove.flush:
            if status == 202:
                self.remover.remove_all()
            return
        if 200 <= status < 300:
            for key, owner in to_remove.given_back.items():
                self.remover.note_given_back(key, owner)
        if to_remove.left_to_gc and 200 <= status < 300:
            logger.warning(
                "deleted %s: more than %d files beneath it are left to "
                "'kinto-attachment-mw gc' (kinto.attachment.max_removals_per_request)",
                to_remove.left_to_gc,
                self.max_removals,
            )
        for owner, attachment in to_remove.confirmed(status, body).items():
            if key_of(self.remover.storage, attachment) not in keep:
                self.remover.remove_dropped(attachment, owner, planned_at=to_remove.planned_at)

    def note_copies(
        self, environ: dict, method: str, route: Route, style: PatchStyle, body: object
    ) -> frozenset[str]:
        """Before the record's lock: check a record write that gives it another record's
        file, and note that reference (on S3, a copy of the object onto itself: seconds
        for large files), so that no other writer of the record waits for it. Under the
        lock, :meth:`foresee` checks again, on the record as it is then, without the note.

        Returns the keys of the files noted as shared.
        """
        if route.kind is not Kind.RECORD or method == "DELETE":
            return frozenset()
        if not touches_attachment(method, style, body):
            return frozenset()
        record = self.kinto.in_real_bucket(environ, route).record
        current = self.kinto.get_record(environ, record)
        previous = current["data"].get(ATTACHMENT_FIELD) if current else None
        noted = self.guard.check(
            attachment_after(method, style, body, current),
            previous,
            record,
            api_root=self.api_root(environ),
        )
        return frozenset({noted} if noted else ())

    def foresee(
        self,
        environ: dict,
        method: str,
        route: Route,
        query: Iterable[tuple[str, str]],
        style: PatchStyle,
        body: object,
        noted: frozenset[str] = frozenset(),
    ) -> FilesToRemove | None:
        """Check a write against tampering and learn which files it would orphan.

        Raises the 400 of a forged ``attachment``; returns what to remove once Kinto
        confirms (``None``: nothing). ``noted``: see :meth:`note_copies`.
        """
        if route.kind is Kind.FLUSH:
            return FilesToRemove(flush=True)
        if method != "DELETE" and not touches_attachment(method, style, body):
            return None
        route = self.kinto.in_real_bucket(environ, route)
        if method == "POST":
            new = attachment_after(method, style, body, None)
            record_id = (body.get("data") or {}).get("id") if isinstance(body, dict) else None
            owner = (
                RecordPath(route.bucket_id, route.collection_id, record_id)
                if isinstance(record_id, str)
                else None  # Kinto picks the id: a copy for sure
            )
            self.guard.check(new, None, owner, api_root=self.api_root(environ))
            given = self.guard.given_back(new, None, owner)
            return FilesToRemove(given_back={given: owner}) if given and owner else None
        if route.kind is Kind.RECORD:
            return self._plan_record(environ, method, route.record, style, body, noted)
        beneath = self._beneath(environ, route, list(query))
        try:
            attachments = dict(itertools.islice(beneath, self.max_removals + 1))
        except ListingRefused:
            return None  # Kinto will most likely refuse the delete too; remove nothing
        if len(attachments) > self.max_removals:
            # Listing on would cost memory and time for each file: gc will find them.
            return FilesToRemove(left_to_gc=route.uri)
        return FilesToRemove(attachments, _DELETED_LEVEL.get(route.kind))

    def _plan_record(
        self,
        environ: dict,
        method: str,
        record: RecordPath,
        style: PatchStyle,
        body: object,
        noted: frozenset[str],
    ) -> FilesToRemove | None:
        current = self.kinto.get_record(environ, record)
        previous = current["data"].get(ATTACHMENT_FIELD) if current else None
        given = None
        if method != "DELETE":
            new = attachment_after(method, style, body, current)
            self.guard.check(new, previous, record, noted, self.api_root(environ))
            given = self.guard.given_back(new, previous, record)
            if given is None and (
                _location(new) == _location(previous) or self._same_stored_file(new, previous)
            ):
                return None  # same file (its location perhaps made private), or still none
        if not isinstance(previous, dict) and given is None:
            return None
        return FilesToRemove(
            {record: previous} if isinstance(previous, dict) else {},
            given_back={given: record} if given else {},
        )

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
                attachment = item.get(ATTACHMENT_FIELD)
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
        children = (
            item["id"]
            for item in self.kinto.list_all(
                environ, parent.url_path, [*own_filters, ("_fields", "id")]
            )
            if isinstance(item.get("id"), str)
        )
        for child_id in children:
            child = (
                Route(child_kind, bucket_id, child_id)
                if child_kind is Kind.COLLECTION
                else Route(child_kind, child_id)
            )
            yield from self._beneath(environ, child, [])

    def _same_stored_file(self, new: object, previous: object) -> bool:
        key = key_of(self.remover.storage, new)
        return key is not None and key == key_of(self.remover.storage, previous)

    def api_root(self, environ: dict) -> str:
        """Where the writer reaches the API: private locations must be under it."""
        return self.public_address.api_root(Request(environ))

    def record_lock(self, environ: dict, route: Route) -> str:
        """The name of a record's lock: its URI under the caller's real bucket."""
        return self.kinto.in_real_bucket(environ, route).record.uri


def _location(attachment: object) -> object:
    return attachment.get("location") if isinstance(attachment, dict) else None
