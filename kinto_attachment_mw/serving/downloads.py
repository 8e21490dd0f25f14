"""``GET`` and ``HEAD .../records/{rid}/attachment``: the record's file, for whoever may
read the record, as Kinto decides.

Kinto is asked with the caller's own credentials (an internal ``GET`` of the record): its
401, 403 or 404 is the answer, so the file cannot be probed by someone who cannot read the
record. Then local storage streams the file here (``Range`` and conditional requests
honoured, ``ETag`` the file's hash) or hands it to nginx (``download_accel_path``:
``X-Accel-Redirect`` to an ``internal`` location), and S3 or GCS answer ``307`` to a
presigned URL that lives ``download_url_seconds``. A gzipped attachment is served as
stored: the ``.gz`` its hash describes. Whichever way, the answer carries the safety
headers of :mod:`.headers`, and the record's ``mimetype`` only when it is a media type.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from webob import Request, Response

from ..files.locations import KEY_PARAMETER, key_of
from ..protocol import errors
from ..protocol.client import KintoClient
from ..protocol.paths import ATTACHMENT_FIELD, RecordPath
from ..storage import LocalStorage, Storage
from ..storage.base import is_private_key
from .file_server import serve_file
from .headers import add_safety_headers, content_disposition, media_type

__all__ = ["Downloads", "content_disposition"]


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
        attachment = self._readable_attachment(request.environ, record)
        key = key_of(self.storage, attachment)
        asked = _asked_keys(request.environ)
        if key is None or (asked and asked != [key]):
            # A URL names the record's current file, never another: a record id may be
            # deleted and created again by someone else, so "files this record once had"
            # is nothing its readers may be trusted with.
            raise errors.AttachmentError(
                404,
                errors.Errno.MISSING_RESOURCE,
                "This record's attachment is no longer that file: read the record again"
                " for its current location."
                if asked and key is not None
                else "This record has no attachment stored here.",
                details={"id": record.record_id, "resource_name": "attachment"},
            )
        if is_private_key(key):
            self._check_private(request.environ, record, key, attachment)
        content_type = media_type(attachment.get("mimetype"))
        name = str(attachment.get("filename") or key.rsplit("/")[-1])
        digest = attachment.get("hash")
        disposition = content_disposition(name)
        if isinstance(self.storage, LocalStorage) and self.accel_path:
            # nginx sends the bytes (Range and all) from its ``internal`` location: no
            # gunicorn thread is held for as long as the download takes.
            response = Response(status=200, content_type=content_type, charset=None)
            response.headers["X-Accel-Redirect"] = f"{self.accel_path}/{quote(key)}"
            response.headers["Content-Disposition"] = disposition
            response.cache_control = "private, no-cache"
            return add_safety_headers(response)
        if isinstance(self.storage, LocalStorage):
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
        return add_safety_headers(response)

    def _check_private(self, environ: dict, record: RecordPath, key: str, attachment: dict):
        """A private file is served for a record that holds it now, by the rules of what
        is stored beside it, never by what a location says (any record's location can
        name any key): its owner, the record it was uploaded for, must not have let go of
        it (see ``FileRemover``), and a copy is served only to those who may read that
        owner record too, while it holds this very file. A record created again under the
        owner's id holds nothing of its predecessor's, and a bucket deleted and created
        again has no record that holds it."""
        stored = self.storage.metadata(key)
        if (
            stored is None
            or stored.owner is None
            or stored.owner_dropped
            or stored.hash != attachment.get("hash")
        ):
            raise _not_served(record)
        if stored.owner == record:
            return
        held = self._readable_attachment(environ, stored.owner, missing=_not_served(record))
        if key_of(self.storage, held) != key or held.get("hash") != stored.hash:
            raise _not_served(record)

    def _readable_attachment(
        self, environ: dict, record: RecordPath, missing: Exception | None = None
    ) -> dict | None:
        """The record's ``attachment``, read with the caller's credentials: Kinto's 401,
        403 or 404 is the answer when they may not read it (``missing`` for its 404)."""
        found = self.kinto.call(environ, "GET", record.url_path)
        if found.status == 404 and missing is not None:
            raise missing
        if found.status != 200:
            raise errors.KintoAnswer(found.response)
        attachment = ((found.body or {}).get("data") or {}).get(ATTACHMENT_FIELD)
        return attachment if isinstance(attachment, dict) else None


def _asked_keys(environ: dict) -> list[str]:
    """The ``key`` values of the query string; a value that is not UTF-8 (no stored
    name is spelled so) reads as one that names no file."""
    query = environ.get("QUERY_STRING", "")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return ["\x00"]
    return [value for name, value in pairs if name == KEY_PARAMETER]


def _not_served(record: RecordPath) -> errors.AttachmentError:
    return errors.AttachmentError(
        404,
        errors.Errno.MISSING_RESOURCE,
        "This file is no longer served: the record it was uploaded for does not hold it any more.",
        details={"id": record.record_id, "resource_name": "attachment"},
    )
