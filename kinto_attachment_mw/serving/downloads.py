"""``GET`` and ``HEAD .../records/{rid}/attachment``: the record's file, for whoever may
read the record, as Kinto decides.

Kinto is asked with the caller's own credentials (an internal ``GET`` of the record): its
401, 403 or 404 is the answer, so the file cannot be probed by someone who cannot read the
record. Then local storage streams the file here (``Range`` and conditional requests
honoured, ``ETag`` the file's hash) or hands it to nginx (``download_accel_path``:
``X-Accel-Redirect`` to an ``internal`` location), and S3 or GCS answer ``307`` to a
presigned URL that lives ``download_url_seconds``. A gzipped attachment is served as
stored: the ``.gz`` its hash describes.
"""

from __future__ import annotations

from urllib.parse import quote

from webob import Request, Response

from ..protocol import errors
from ..protocol.client import KintoClient
from ..protocol.paths import ATTACHMENT_FIELD, RecordPath
from ..storage import LocalStorage, Storage
from .file_server import serve_file


class Downloads:
    def __init__(
        self,
        storage: Storage,
        kinto: KintoClient,
        url_seconds: int,
        accel_path: str | None = None,
    ):
        self.storage = storage
        self.kinto = kinto
        self.url_seconds = url_seconds
        self.accel_path = accel_path

    def __call__(self, request: Request, record: RecordPath) -> Response:
        found = self.kinto.call(request.environ, "GET", record.url_path)
        if found.status != 200:
            raise errors.KintoAnswer(found.response)
        data = (found.body or {}).get("data") or {}
        attachment = data.get(ATTACHMENT_FIELD)
        location = attachment.get("location") if isinstance(attachment, dict) else None
        key = self.storage.key_for(location) if isinstance(location, str) else None
        if key is None:
            raise errors.AttachmentError(
                404,
                errors.Errno.MISSING_RESOURCE,
                "This record has no attachment stored here.",
                details={"id": record.record_id, "resource_name": "attachment"},
            )
        content_type = str(attachment.get("mimetype") or "application/octet-stream")
        disposition = content_disposition(str(attachment.get("filename") or key.rsplit("/")[-1]))
        if isinstance(self.storage, LocalStorage) and self.accel_path:
            # nginx sends the bytes (Range and all) from its ``internal`` location: no
            # gunicorn thread is held for as long as the download takes.
            response = Response(status=200, content_type=content_type, charset=None)
            response.headers["X-Accel-Redirect"] = f"{self.accel_path}/{quote(key)}"
            response.headers["Content-Disposition"] = disposition
            response.cache_control = "private, no-cache"
            return response
        if isinstance(self.storage, LocalStorage):
            digest = attachment.get("hash")
            return serve_file(
                request,
                self.storage,
                key,
                content_type,
                etag=digest if isinstance(digest, str) and digest else None,
                disposition=disposition,
            )
        url = self.storage.download_url(key, content_type, disposition, self.url_seconds)
        response = Response(status=307, location=url, content_type=None)
        response.cache_control = "private, no-store"  # the URL is a credential
        return response


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` for every client, ``filename*`` (RFC 8187) with
    the real name when it is not ASCII."""
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "_" for ch in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
