"""The attachment endpoint: upload (POST) and removal (DELETE) of a record's file.

Upload: permission probe (nothing read yet) -> stream-parse the body into a storage sink
-> under the record's lock: conditional write of the record, then removal of the previous
file -> answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from webob import Request, Response

from ..config import Settings
from ..files.remover import FileRemover
from ..locks import RecordLocks
from ..protocol import errors
from ..protocol.client import KintoClient, KintoResponse
from ..protocol.errors import Errno
from ..protocol.paths import ATTACHMENT_FIELD, RecordPath
from ..storage import Storage
from .body import declared_length, iter_body
from .form import MAX_FORM_OVERHEAD, multipart_boundary, parse_form
from .new_file import NewFile, size_bound
from .preconditions import check_client_preconditions

logger = logging.getLogger(__name__)

#: Headers of Kinto's record write that also describe the upload's answer.
_COPIED_HEADERS = ("ETag", "Last-Modified", "X-Content-Type-Options", "Content-Security-Policy")
#: Bodies up to this many times ``max_size_bytes`` are read through when the file is too
#: large, for the refusal to give its exact size; larger ones are refused before reading.
_COUNTED_SIZES = 4


class AttachmentEndpoint:
    """``locks`` serialize the record write and the removal of the previous file with
    other writers of the same record, in any process (see :mod:`..locks`)."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        kinto: KintoClient,
        remover: FileRemover,
        locks: RecordLocks,
    ):
        self.settings = settings
        self.storage = storage
        self.kinto = kinto
        self.remover = remover
        self.locks = locks

    # POST .../records/{rid}/attachment

    def upload(self, request: Request, record: RecordPath) -> Response:
        environ = request.environ
        existing = self.authorize(environ, record)
        record = self.kinto.in_real_bucket(environ, record)
        policy = self.settings.policy_for(record.bucket_id, record.collection_id)

        boundary = multipart_boundary(environ.get("CONTENT_TYPE", ""))
        length = declared_length(environ)
        limit = policy.max_size_bytes
        if limit and length is not None and length - MAX_FORM_OVERHEAD > _COUNTED_SIZES * limit:
            # Far too large: refused unread. Closer to the limit, the file is read to its
            # end (not stored) and refused with its size.
            raise errors.too_large(limit, more_than=length - MAX_FORM_OVERHEAD)

        stored = NewFile(self.storage, size_bound(length, limit), counted=length is not None)

        def receive() -> dict:
            form = parse_form(
                iter_body(
                    environ,
                    length,
                    self.storage.upload_read_size,
                    self.settings.body_timeout_seconds,
                ),
                boundary,
                lambda part: stored.open(part, policy, record),
            )
            return form.fields

        return self.store(request, record, existing, stored, receive)

    def store(
        self,
        request: Request,
        record: RecordPath,
        existing: dict | None,
        stored: NewFile,
        receive: Callable[[], dict],
    ) -> Response:
        """Take the file in (``receive`` feeds ``stored`` and returns the ``data`` and
        ``permissions`` fields), then, under the record's lock, write the record and
        release the file it held: what every upload ends with, multipart or resumable.
        The new file is discarded unless the record references it."""
        environ = request.environ
        written: KintoResponse | None = None
        try:
            fields = receive()
            metadata = stored.commit(record, self.settings.public_address.api_root(request))
            body = {"data": {**fields.get("data", {}), ATTACHMENT_FIELD: metadata}}
            if "permissions" in fields:
                body["permissions"] = fields["permissions"]
            with self.locks.hold(record.uri):
                written, existing = self._write_on_latest(environ, record, body, existing)
                if _succeeded(written) and existing:
                    self.remover.remove_dropped(
                        existing.get(ATTACHMENT_FIELD), record, keep=stored.key
                    )
        except BaseException:
            if not _succeeded(written):  # once the record references it, the file stays
                stored.discard()
            raise
        assert written is not None
        if not _succeeded(written):
            stored.discard()
            raise errors.KintoAnswer(written.response)
        response = Response(
            status=201 if existing is None else 200,
            json_body=metadata,
            charset=None,
        )
        response.headers["Location"] = (
            self.settings.public_address.api_root(request) + record.url_path
        )
        for name in _COPIED_HEADERS:
            if name in written.response.headers:
                response.headers[name] = written.response.headers[name]
        return response

    # DELETE .../records/{rid}/attachment

    def remove(self, request: Request, record: RecordPath) -> Response:
        environ = request.environ
        existing = self.authorize(environ, record, must_exist=True)
        assert existing is not None
        record = self.kinto.in_real_bucket(environ, record)
        # ``null`` is "no attachment": a record that never had one gets it too, as with
        # the plugin; one that is already ``null`` is left alone.
        if ATTACHMENT_FIELD not in existing or existing[ATTACHMENT_FIELD] is not None:
            with self.locks.hold(record.uri):
                written = self._retry_on_conflict(
                    lambda: self.kinto.clear_field(
                        environ, record, ATTACHMENT_FIELD, existing["last_modified"]
                    )
                )
                if not 200 <= written.status < 300:
                    raise errors.KintoAnswer(written.response)
                self.remover.remove_dropped(existing.get(ATTACHMENT_FIELD), record)
        return Response(status=204, content_type=None)

    # Shared steps

    def _write(
        self, environ: dict, record: RecordPath, body: dict, existing: dict | None
    ) -> KintoResponse:
        """Create the record, or update it if still at the version the probe saw."""
        if existing is None:
            return self._retry_on_conflict(lambda: self.kinto.create_record(environ, record, body))
        return self._retry_on_conflict(
            lambda: self.kinto.patch_record(environ, record, body, existing["last_modified"])
        )

    def authorize(self, environ: dict, record: RecordPath, must_exist: bool = False) -> dict | None:
        """Kinto's verdict on this caller writing this record, before the body is read.

        Returns the existing record (``None`` when it is to be created); Kinto's refusal
        (401, 403, 404) is relayed to the client as it is.
        """
        allowed = self.kinto.probe_write(environ, record)
        if allowed.status != 412:
            raise errors.KintoAnswer(allowed.response)
        existing = _existing_record(allowed)
        if existing is None and must_exist:
            raise errors.AttachmentError(
                404,
                Errno.INVALID_RESOURCE_ID,
                None,
                details={"id": record.record_id, "resource_name": "record"},
            )
        check_client_preconditions(environ, existing, allowed.response.headers.get("ETag"))
        return existing

    def _write_on_latest(
        self, environ: dict, record: RecordPath, body: dict, probed: dict | None
    ) -> tuple[KintoResponse, dict | None]:
        """The write, and the record it rested on. If the record changed while the body
        streamed (a title edited during a long upload), the write rests on the record as
        it is now, read again under the lock, and the attachment released is the one it
        holds now. A client that sent ``If-Match`` or ``If-None-Match`` asked for the
        version it named: its 412 stays."""
        written = self._write(environ, record, body, probed)
        if written.status != 412 or _precondition_given(environ):
            return written, probed
        allowed = self.kinto.probe_write(environ, record)
        if allowed.status != 412:  # permission revoked, bucket gone...: Kinto says why
            return allowed, probed
        current = _existing_record(allowed)
        return self._write(environ, record, body, current), current

    @staticmethod
    def _retry_on_conflict(write) -> KintoResponse:
        """Kinto asks to retry a write that hit a concurrent transaction (409, errno 122)."""
        result = write()
        if result.status == 409 and (result.body or {}).get("errno") == Errno.CONSTRAINT_VIOLATED:
            result = write()
        return result


def _precondition_given(environ: dict) -> bool:
    return bool(environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH"))


def _succeeded(written: KintoResponse | None) -> bool:
    return written is not None and 200 <= written.status < 300


def _existing_record(probe: KintoResponse) -> dict | None:
    """The record from a probe's 412 (``details.existing``), or ``None`` when missing."""
    details = (probe.body or {}).get("details") or {}
    existing = details.get("existing")
    return existing if isinstance(existing, dict) else None
