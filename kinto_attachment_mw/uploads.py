"""The attachment endpoint: upload (POST) and removal (DELETE) of a record's file.

Upload: permission probe (nothing read yet) -> stream-parse the body into a storage sink
-> under the record's lock: conditional write of the record, then removal of the previous
file -> answer.
"""

from __future__ import annotations

import logging
import re

from webob import Request, Response

from . import errors
from .gzip_sink import GZIP_MIMETYPE, GZIP_SUFFIX, GzipSink, gzip_size_bound
from .kinto_api import KintoClient, KintoResponse, RecordPath
from .locks import ProcessLocks, RecordLocks
from .multipart import FILE_FIELD, MAX_FORM_OVERHEAD, FilePart, multipart_boundary, parse_form
from .naming import client_filename, extension_of, mimetype_for, stored_key
from .releasing import FileReleaser
from .request_body import declared_length, iter_body
from .settings import Policy, Settings
from .sink import HashingSink
from .storage import FileWriter, Storage

logger = logging.getLogger(__name__)

#: Headers of Kinto's record write that also describe the upload's answer.
_COPIED_HEADERS = ("ETag", "Last-Modified", "X-Content-Type-Options", "Content-Security-Policy")


class AttachmentEndpoint:
    """``locks`` serialize the record write and the removal of the previous file with
    other writers of the same record, in any process (see :mod:`.locks`)."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        kinto: KintoClient,
        releaser: FileReleaser,
        locks: RecordLocks | None = None,
    ):
        self.settings = settings
        self.storage = storage
        self.kinto = kinto
        self.releaser = releaser
        self.locks = locks or ProcessLocks(settings.locks.timeout_seconds)

    # POST .../records/{rid}/attachment

    def upload(self, request: Request, record: RecordPath) -> Response:
        environ = request.environ
        existing = self._authorize(environ, record)
        record = self._resolve_bucket(environ, record)
        policy = self.settings.policy_for(record.bucket_id, record.collection_id)

        boundary = multipart_boundary(environ.get("CONTENT_TYPE", ""))
        length = declared_length(environ)
        limit = policy.max_size_bytes
        if limit and length is not None and length - MAX_FORM_OVERHEAD > limit:
            raise errors.too_large(length - MAX_FORM_OVERHEAD, limit)

        stored = _StoredFile(self.storage, _size_bound(length, limit))
        written: KintoResponse | None = None
        try:
            form = parse_form(
                iter_body(environ, length, self.storage.upload_read_size),
                boundary,
                lambda part: stored.open(part, policy, record),
            )
            metadata = stored.commit(record)
            body = {"data": {**form.fields.get("data", {}), FILE_FIELD: metadata}}
            if "permissions" in form.fields:
                body["permissions"] = form.fields["permissions"]
            with self.locks.hold(record.uri):
                written = self._write(environ, record, body, existing)
                if _succeeded(written) and existing:
                    self.releaser.release(
                        existing.get(FILE_FIELD), record, keep=metadata["location"]
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
        response.headers["Location"] = request.host_url + request.script_name + record.url_path
        for name in _COPIED_HEADERS:
            if name in written.response.headers:
                response.headers[name] = written.response.headers[name]
        return response

    # DELETE .../records/{rid}/attachment

    def remove(self, request: Request, record: RecordPath) -> Response:
        environ = request.environ
        existing = self._authorize(environ, record, must_exist=True)
        assert existing is not None
        record = self._resolve_bucket(environ, record)
        if FILE_FIELD in existing:
            with self.locks.hold(record.uri):
                written = self._retry_on_conflict(
                    lambda: self.kinto.remove_field(
                        environ, record, FILE_FIELD, existing["last_modified"]
                    )
                )
                if not 200 <= written.status < 300:
                    raise errors.KintoAnswer(written.response)
                self.releaser.release(existing[FILE_FIELD], record)
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

    def _authorize(
        self, environ: dict, record: RecordPath, must_exist: bool = False
    ) -> dict | None:
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
                errors.INVALID_RESOURCE_ID,
                None,
                details={"id": record.record_id, "resource_name": "record"},
            )
        _check_client_preconditions(environ, existing, allowed.response.headers.get("ETag"))
        return existing

    def _resolve_bucket(self, environ: dict, record: RecordPath) -> RecordPath:
        """``default`` is an alias; files and the Location header use the real bucket id."""
        if record.bucket_id != "default":
            return record
        real_id = self.kinto.default_bucket_id(environ)
        if not real_id:
            raise errors.AttachmentError(
                401, errors.MISSING_AUTH_TOKEN, "Please authenticate yourself to use this endpoint."
            )
        return record.in_bucket(real_id)

    @staticmethod
    def _retry_on_conflict(write) -> KintoResponse:
        """Kinto asks to retry a write that hit a concurrent transaction (409, errno 122)."""
        result = write()
        if result.status == 409 and (result.body or {}).get("errno") == errors.CONSTRAINT_VIOLATED:
            result = write()
        return result


class _StoredFile:
    """The new upload's file, from first byte to commit, or discarded on any failure."""

    def __init__(self, storage: Storage, size_bound: int | None = None):
        self.storage = storage
        self.size_bound = size_bound
        self.filename = ""
        self.mimetype = ""
        self.sink: HashingSink | None = None
        self.gzip: GzipSink | None = None
        self.writer: FileWriter | None = None
        self.key: str | None = None

    def open(self, part: FilePart, policy: Policy, record: RecordPath) -> HashingSink:
        self.filename = client_filename(part.filename)
        if not self.filename:
            raise errors.invalid_body("Filename is required.")
        if not policy.allows_extension(extension_of(self.filename).lstrip(".")):
            raise errors.invalid_body("File extension is not allowed.")
        self.mimetype = mimetype_for(self.filename, part.content_type, policy)
        stored_name = self.filename + GZIP_SUFFIX if policy.gzipped else self.filename
        key = stored_key(
            stored_name, policy, record.bucket_id, record.collection_id, record.record_id
        )
        bound = self.size_bound
        if bound is not None and policy.gzipped:
            bound = gzip_size_bound(bound)
        self.writer = self.storage.open_writer(
            key, GZIP_MIMETYPE if policy.gzipped else self.mimetype, bound
        )
        self.gzip = GzipSink(self.writer) if policy.gzipped else None
        self.sink = HashingSink(self.gzip or self.writer, policy.max_size_bytes)
        return self.sink

    def commit(self, owner: RecordPath) -> dict:
        assert self.writer is not None and self.sink is not None
        uploaded = {
            "filename": self.filename,
            "hash": self.sink.hexdigest,
            "mimetype": self.mimetype,
            "size": self.sink.size,
        }
        stored = self.sink
        if self.gzip is not None:
            self.gzip.finish()
            stored = self.gzip.stored
        digest, size = stored.hexdigest, stored.size
        self.key = self.writer.commit({"record": owner.uri, "hash": digest, "size": size})
        metadata = {
            "filename": self.filename,
            "hash": digest,
            "location": self.storage.url(self.key),
            "mimetype": self.mimetype,
            "size": size,
        }
        if self.gzip is not None:  # the record describes the stored file, and the upload
            metadata.update(
                filename=self.filename + GZIP_SUFFIX, mimetype=GZIP_MIMETYPE, original=uploaded
            )
        return metadata

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        if self.key is not None:
            try:
                self.storage.delete(self.key)
            except errors.StorageUnavailable as error:
                logger.warning("Could not remove unreferenced upload %s: %s", self.key, error)


def _size_bound(length: int | None, limit: int) -> int | None:
    """The most bytes the file can have: the body's length, or the size limit (``0``:
    none) when lower. A chunked body gives none, even under a limit: S3 parts then grow
    with the file itself, not with a limit that may be far above it."""
    if length is None:
        return None
    return min(length, limit) if limit else length


def _succeeded(written: KintoResponse | None) -> bool:
    return written is not None and 200 <= written.status < 300


def _existing_record(probe: KintoResponse) -> dict | None:
    """The record from a probe's 412 (``details.existing``), or ``None`` when missing."""
    details = (probe.body or {}).get("details") or {}
    existing = details.get("existing")
    return existing if isinstance(existing, dict) else None


def _check_client_preconditions(environ: dict, existing: dict | None, etag: str | None) -> None:
    """Honour the client's own ``If-Match`` / ``If-None-Match`` before reading the body.

    The record write is conditional on the version seen by the probe anyway; this lets a
    client say which version it means to replace, with the rules of Kinto's record
    endpoints: values are ``*`` or quoted integers, ``"0"`` means no precondition,
    ``If-None-Match`` only acts as ``*``.
    """
    if_match = _precondition(environ, "If-Match")
    if_none_match = _precondition(environ, "If-None-Match")
    if existing is None:
        failed = bool(if_match)  # any If-Match needs the record to exist
    elif if_none_match == "*":
        failed = True
    else:
        failed = if_match not in (None, "*") and existing.get("last_modified") != if_match
    if failed:
        raise errors.AttachmentError(
            412,
            errors.MODIFIED_MEANWHILE,
            "Resource was modified meanwhile",
            details={} if existing is None else {"existing": existing},
            headers={"ETag": etag} if etag else {},
        )


def _precondition(environ: dict, header: str) -> int | str | None:
    value = environ.get("HTTP_" + header.upper().replace("-", "_"), "").strip()
    if not value:
        return None
    if value == "*":
        return value
    if not _QUOTED_INTEGER.match(value):
        raise errors.validation_error(
            "header", header, "The value should be integer between double quotes."
        )
    return int(value[1:-1]) or None


_QUOTED_INTEGER = re.compile(r'^"[0-9]+"$')
