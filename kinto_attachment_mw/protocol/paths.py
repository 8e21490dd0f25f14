"""Kinto's URL layout: which resource a path names. The one place that parses it.

A record is named by its :class:`RecordPath`, written as Kinto writes it in permissions
and in what the middleware keeps beside a stored file (``/buckets/b/collections/c/records/r``);
any other path is a :class:`Route` of some :class:`Kind`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

API_PREFIX = "/v1"
#: Kinto's service endpoints that the middleware adds to.
HELLO_PATH = API_PREFIX + "/"
HEARTBEAT_PATH = API_PREFIX + "/__heartbeat__"
#: The record field that holds a file's metadata, and the multipart field of the file.
ATTACHMENT_FIELD = "attachment"
#: The bucket id that stands for the caller's personal bucket (Kinto's default_bucket).
DEFAULT_BUCKET = "default"


@dataclass(frozen=True)
class RecordPath:
    bucket_id: str
    collection_id: str
    record_id: str

    @classmethod
    def parse(cls, uri: object) -> RecordPath | None:
        """The record a URI names (without API prefix, as :attr:`uri` writes it), else
        ``None``."""
        route = route_of(uri) if isinstance(uri, str) else None
        if route is None or route.kind is not Kind.RECORD or uri.startswith(API_PREFIX):
            return None
        return route.record

    @property
    def uri(self) -> str:
        """Kinto's own name for the record (no API prefix), as in its permissions."""
        return (
            f"/buckets/{self.bucket_id}/collections/{self.collection_id}/records/{self.record_id}"
        )

    @property
    def url_path(self) -> str:
        return API_PREFIX + self.uri

    def in_bucket(self, bucket_id: str) -> RecordPath:
        return RecordPath(bucket_id, self.collection_id, self.record_id)


class Kind(enum.Enum):
    BUCKETS = "buckets"
    BUCKET = "bucket"
    COLLECTIONS = "collections"
    COLLECTION = "collection"
    RECORDS = "records"
    RECORD = "record"
    ATTACHMENT = "attachment"
    BATCH = "batch"
    FLUSH = "flush"


_RESOURCE_PATH = re.compile(
    r"^(?:/v1)?/buckets"
    r"(?:/(?P<bucket>[^/]+)"
    r"(?:/collections"
    r"(?:/(?P<collection>[^/]+)"
    r"(?:/records"
    r"(?:/(?P<record>[^/]+)"
    r"(?P<attachment>/attachment)?)?)?)?)?)?$"
)
_SERVICE_PATHS = {
    "/v1/batch": Kind.BATCH,
    "/batch": Kind.BATCH,
    "/v1/__flush__": Kind.FLUSH,
    "/__flush__": Kind.FLUSH,
}


@dataclass(frozen=True)
class Route:
    kind: Kind
    bucket_id: str | None = None
    collection_id: str | None = None
    record_id: str | None = None

    @property
    def record(self) -> RecordPath:
        assert self.kind in (Kind.RECORD, Kind.ATTACHMENT)
        return RecordPath(self.bucket_id, self.collection_id, self.record_id)

    def in_bucket(self, bucket_id: str) -> Route:
        return Route(self.kind, bucket_id, self.collection_id, self.record_id)

    @property
    def url_path(self) -> str:
        """The resource's path under ``/v1``."""
        return API_PREFIX + self.uri

    @property
    def uri(self) -> str:
        """Kinto's own name for the resource (no API prefix), as in its permissions."""
        segments = ["buckets"]
        if self.bucket_id is not None:
            segments.append(self.bucket_id)
            if self.kind is not Kind.BUCKET:
                segments.append("collections")
        if self.collection_id is not None:
            segments.append(self.collection_id)
            if self.kind is not Kind.COLLECTION:
                segments.append("records")
        if self.record_id is not None:
            segments.append(self.record_id)
            if self.kind is Kind.ATTACHMENT:
                segments.append("attachment")
        return "/" + "/".join(segments)


def route_of(path: str) -> Route | None:
    """The Kinto resource behind ``path`` (with or without ``/v1``), or ``None``."""
    service = _SERVICE_PATHS.get(path)
    if service is not None:
        return Route(service)
    match = _RESOURCE_PATH.match(path)
    if match is None:
        return None
    bucket, collection, record = match["bucket"], match["collection"], match["record"]
    if match["attachment"]:
        kind = Kind.ATTACHMENT
    elif record is not None:
        kind = Kind.RECORD
    elif path.endswith("/records"):
        kind = Kind.RECORDS
    elif collection is not None:
        kind = Kind.COLLECTION
    elif path.endswith("/collections"):
        kind = Kind.COLLECTIONS
    elif bucket is not None:
        kind = Kind.BUCKET
    else:
        kind = Kind.BUCKETS
    return Route(kind, bucket, collection, record)


def wsgi_path(environ: dict) -> str | None:
    """The request's path, decoded as UTF-8 (``None`` when its bytes are not UTF-8).

    WSGI hands the path as latin-1 text; WebOb's ``path_info`` raises on bytes that are
    not UTF-8 (``/attachments/%ff.txt``), so the middleware reads it here instead."""
    try:
        return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
