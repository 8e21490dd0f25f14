"""tus 1.0 on a record's attachment URL.

``POST .../records/{rid}/attachment`` with ``Tus-Resumable: 1.0.0`` creates an upload
(without it, the same URL is the multipart upload); ``.../attachment/uploads/{id}`` then
takes ``HEAD``, ``PATCH`` and ``DELETE``. Permission, extension and size are decided at
creation, before a byte is kept, by the same probe into Kinto as a multipart upload. An
upload belongs to the principal that created it (anyone else: 404). The bytes go to the
spool; the ``PATCH`` that brings the last one stores the file (read once more from the
spool: SHA-256, content check, storage) and writes the record exactly as a multipart
upload does (:meth:`AttachmentEndpoint.store`), with that request's credentials.
"""

from __future__ import annotations

import hmac
import time

from webob import Request, Response

from ..config import Settings
from ..locks import RecordLocks
from ..protocol import cors, errors
from ..protocol.client import KintoClient
from ..protocol.paths import RecordPath
from ..storage import Storage, StorageUnavailable
from ..upload.body import declared_length
from ..upload.endpoint import AttachmentEndpoint
from ..upload.form import FilePart
from ..upload.naming import client_filename, extension_of
from ..upload.new_file import NewFile
from .pieces import append_piece
from .protocol import (
    CHECKSUMS,
    EXTENSIONS,
    OFFSET_STREAM,
    UPLOADS_SEGMENT,
    VERSION,
    check_version,
    declared_int,
    http_date,
    json_field,
    method_of,
    parse_metadata,
    resume_offset,
    tus_error,
    tus_response,
)
from .spool import Spool, UploadState

_READ = 1024 * 1024
_UPLOAD_METHODS = "HEAD,PATCH,DELETE,OPTIONS,POST"
#: Unfinished uploads each creation looks at for expired ones (gc removes the rest).
_SWEEP = 20


class ResumableUploads:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        kinto: KintoClient,
        endpoint: AttachmentEndpoint,
        locks: RecordLocks,
    ):
        self.settings = settings
        self.storage = storage
        self.kinto = kinto
        self.endpoint = endpoint
        self.locks = locks
        resumable = settings.resumable
        self.spool = Spool(
            resumable.spool_path, resumable.max_pending_uploads, resumable.spool_quota_bytes
        )
        self.spool.check()  # a folder someone else owns or may write to stops start-up

    @property
    def capability(self) -> dict:
        """What ``GET /v1/`` says of resumable uploads."""
        return {
            "protocol": "tus",
            "version": VERSION,
            "extensions": EXTENSIONS.split(","),
            "max_size": self.settings.default_policy.max_size_bytes or None,
            "expires_after_seconds": self.settings.resumable.expires_after_seconds,
        }

    # POST .../records/{rid}/attachment, Tus-Resumable

    def create(self, request: Request, record: RecordPath) -> Response:
        check_version(request)
        if request.headers.get("Upload-Defer-Length"):
            raise tus_error(400, "Upload-Defer-Length is not supported: send Upload-Length.")
        length = declared_int(request, "Upload-Length")
        if length is None:
            raise tus_error(400, "Upload-Length is required.")
        metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
        filename = client_filename(metadata.get("filename") or metadata.get("name") or "")
        if not filename:
            raise tus_error(400, "Upload-Metadata: 'filename' is required.")
        fields = {name: json_field(metadata, name) for name in ("data", "permissions")}
        fields = {name: value for name, value in fields.items() if value is not None}

        environ = request.environ
        self.endpoint.authorize(environ, record)  # Kinto's 401/403/404, nothing kept
        record = self.kinto.in_real_bucket(environ, record)
        policy = self.settings.policy_for(record.bucket_id, record.collection_id)
        extension = extension_of(filename).lstrip(".")
        if not policy.allows_extension(extension):
            raise errors.extension_not_allowed(extension, sorted(policy.extensions or ()))
        if policy.max_size_bytes and length > policy.max_size_bytes:
            raise tus_error(
                413,
                f"Upload-Length ({length} bytes) exceeds the limit "
                f"({policy.max_size_bytes} bytes).",
            )
        for expired in self.spool.expired(look_at=_SWEEP):
            self.spool.remove(expired)
        content_type = metadata.get("filetype") or metadata.get("mimetype") or metadata.get("type")
        state = UploadState(
            id=self.spool.new_id(),
            record_uri=record.uri,
            owner=self._principal(environ),
            filename=filename,
            content_type=content_type or None,
            length=length,
            expires_at=time.time() + self.settings.resumable.expires_after_seconds,
            fields=fields,
            metadata=request.headers.get("Upload-Metadata") or None,
        )
        self.spool.create(state)  # 429 or 507 when it does not fit
        location = self.settings.public_address.api_root(request) + record.url_path
        response = tus_response(
            201,
            Location=f"{location}{UPLOADS_SEGMENT}{state.id}",
            Upload_Expires=http_date(state.expires_at),
        )
        try:
            if length == 0:  # clients send no PATCH for an empty file: it is done now
                with self.locks.hold(self.spool.lock_name(state.id)):
                    self._complete(request, state)
                response.headers["Upload-Offset"] = "0"
            elif request.content_type == OFFSET_STREAM and declared_length(environ):
                answered = self._patch(request, state, 0)  # creation-with-upload
                response.headers["Upload-Offset"] = answered.headers["Upload-Offset"]
        except BaseException:
            self.spool.remove(state)  # its client never learns the URL: nothing is kept
            raise
        return response

    # .../attachment/uploads/{id}

    def upload(self, request: Request, record: RecordPath, upload_id: str) -> Response:
        method = method_of(request)
        if method == "OPTIONS":
            return self.options(request)
        check_version(request)
        state = self._own(request, record, upload_id)
        if method == "HEAD":
            response = tus_response(
                200,
                Upload_Offset=str(resume_offset(state, self.spool.offset(state.id))),
                Upload_Length=str(state.length),
                Upload_Expires=http_date(state.expires_at),
            )
            if state.metadata:
                response.headers["Upload-Metadata"] = state.metadata
            response.cache_control = "no-store"
            return response
        if method == "PATCH":
            if request.content_type != OFFSET_STREAM:
                raise tus_error(415, f"PATCH needs Content-Type: {OFFSET_STREAM}.")
            offset = declared_int(request, "Upload-Offset")
            if offset is None:
                raise tus_error(400, "Upload-Offset is required.")
            return self._patch(request, state, offset)
        if method == "DELETE":
            with self.locks.hold(self.spool.lock_name(state.id)):
                self.spool.remove(state)
            return tus_response(204)
        raise errors.method_not_allowed("HEAD, PATCH, DELETE, OPTIONS")

    def options(self, request: Request) -> Response:
        """Discovery, or a browser's preflight."""
        if request.headers.get("Access-Control-Request-Method"):
            return cors.preflight(request, self.settings.cors_origins, _UPLOAD_METHODS)
        headers = {"Tus-Version": VERSION, "Tus-Extension": EXTENSIONS}
        limit = self.settings.default_policy.max_size_bytes
        if limit:
            headers["Tus-Max-Size"] = str(limit)
        headers["Tus-Checksum-Algorithm"] = ",".join(CHECKSUMS)
        response = Response(status=204, content_type=None)
        response.headers.update(headers)
        return response

    # Steps

    def _own(self, request: Request, record: RecordPath, upload_id: str) -> UploadState:
        """The caller's upload for this record; 404 for anything else, expired included."""
        state = self.spool.load(upload_id)
        if state is not None and state.expired:
            self.spool.remove(state)
            state = None
        environ = request.environ
        if (
            state is None
            or self.kinto.in_real_bucket(environ, record).uri != state.record_uri
            or not hmac.compare_digest(self._principal(environ), state.owner)
        ):
            raise tus_error(404, "No such upload.")
        return state

    def _patch(self, request: Request, state: UploadState, offset: int) -> Response:
        with self.locks.hold(self.spool.lock_name(state.id)):
            state = self.spool.load(state.id)  # as it is now (another PATCH may have ended)
            if state is None:
                raise tus_error(404, "No such upload.")  # terminated meanwhile
            size = self.spool.offset(state.id)
            start = resume_offset(state, size)
            if offset == size == state.length:
                start = size  # no bytes: the stored file is what was missing
            elif offset != start:
                raise tus_error(409, f"Upload-Offset is {start}, not {offset}.")
            current = append_piece(
                self.spool, state, request, start, self.settings.body_timeout_seconds
            )
            if current == state.length:
                if start < current and state.final_piece_at != start:
                    state.final_piece_at = start  # HEAD answers it until the file is stored
                    self.spool.save(state)
                self._complete(request, state)
        return tus_response(
            204,
            Upload_Offset=str(current),
            Upload_Expires=http_date(state.expires_at),
        )

    def _complete(self, request: Request, state: UploadState) -> None:
        """Store the file and write the record, as a multipart upload ends. The upload is
        gone afterwards, unless storage failed: then HEAD answers where the last piece
        began, and sending it again (or a PATCH of no bytes at the end) retries."""
        record = state.record
        environ = request.environ
        policy = self.settings.policy_for(record.bucket_id, record.collection_id)
        stored = NewFile(self.storage, state.length, counted=True)

        def receive() -> dict:
            sink = stored.open(FilePart(state.filename, state.content_type), policy, record)
            with self.spool.reader(state.id) as part:
                while chunk := part.read(_READ):
                    sink.write(chunk)
            return state.fields

        try:
            existing = self.endpoint.authorize(environ, record)  # Kinto's word, now
            self.endpoint.store(request, record, existing, stored, receive)
        except StorageUnavailable:
            raise
        except BaseException:
            self.spool.remove(state)
            raise
        self.spool.remove(state)

    def _principal(self, environ: dict) -> str:
        """Who is asking, as Kinto names them (``system.Everyone`` when anonymous)."""
        if _PRINCIPAL not in environ:
            hello = self.kinto.call(environ, "GET", "/v1/")
            user = (hello.body or {}).get("user") or {}
            environ[_PRINCIPAL] = str(user.get("id") or "system.Everyone")
        return environ[_PRINCIPAL]


_PRINCIPAL = "kinto_attachment_mw.principal"
