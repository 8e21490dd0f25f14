"""The new upload's file, from its first byte to its commit, or discarded on any failure:
its checks (filename, extension, content), its stored name and type, its sinks, and the
metadata the record will get."""

from __future__ import annotations

import logging

from ..config import Policy
from ..files.locations import PrivateLocation
from ..protocol import errors
from ..protocol.paths import RecordPath
from ..storage import FileWriter, Storage, StorageUnavailable
from ..storage.metadata import StoredFileMetadata
from .content_check import HEAD_SIZE, checked_mimetype
from .form import FilePart
from .naming import client_filename, extension_of, mimetype_for, stored_key
from .sinks import (
    GZIP_MIMETYPE,
    GZIP_SUFFIX,
    GzipSink,
    HashingSink,
    HeldHead,
    gzip_size_bound,
)

logger = logging.getLogger(__name__)


class NewFile:
    """The new upload's file, from first byte to commit, or discarded on any failure."""

    def __init__(self, storage: Storage, size_bound: int | None = None, counted: bool = False):
        """``counted``: the body's length is declared, so a file over the limit is read to
        its end (not stored) to tell its size."""
        self.storage = storage
        self.size_bound = size_bound
        self.counted = counted
        self.filename = ""
        self.mimetype = ""
        self.sink: HashingSink | None = None
        self.gzip: GzipSink | None = None
        self.head: HeldHead | None = None
        self.writer: FileWriter | None = None
        self.key: str | None = None
        self.private = False

    def open(self, part: FilePart, policy: Policy, record: RecordPath) -> HeldHead:
        """Check the name; storing starts once the first bytes said what the file is."""
        self.filename = client_filename(part.filename)
        self.private = policy.private
        if not self.filename:
            raise errors.invalid_body("Filename is required.")
        extension = extension_of(self.filename).lstrip(".")
        if not policy.allows_extension(extension):
            raise errors.extension_not_allowed(extension, sorted(policy.extensions or ()))
        self.mimetype = mimetype_for(self.filename, part.content_type, policy)
        stored_name = self.filename + GZIP_SUFFIX if policy.gzipped else self.filename
        key = stored_key(
            stored_name, policy, record.bucket_id, record.collection_id, record.record_id
        )

        def start(head: bytes) -> HashingSink:
            if policy.check_content:
                named = mimetype_for(self.filename, None, policy)
                self.mimetype = checked_mimetype(
                    self.filename, extension, named, self.mimetype, head
                )
            return self._start(key, policy)

        self.head = HeldHead(start, HEAD_SIZE)
        return self.head

    def _start(self, key: str, policy: Policy) -> HashingSink:
        bound = self.size_bound
        if bound is not None and policy.gzipped:
            bound = gzip_size_bound(bound)
        self.writer = self.storage.open_writer(
            key, GZIP_MIMETYPE if policy.gzipped else self.mimetype, bound, private=self.private
        )
        self.gzip = GzipSink(self.writer) if policy.gzipped else None
        self.sink = HashingSink(self.gzip or self.writer, policy.max_size_bytes, self.counted)
        return self.sink

    def commit(self, owner: RecordPath, api_root: str) -> dict:
        """Make the file visible; the record's ``attachment``. A private file's location
        is its download URL under ``api_root`` (the URL the API's ``/v1`` is under)."""
        assert self.head is not None
        self.head.finish()
        assert self.writer is not None and self.sink is not None
        self.sink.check_size()
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
        self.key = self.writer.commit(
            StoredFileMetadata(
                owner,
                hash=digest,
                size=size,
                private=self.private,
                mimetype=GZIP_MIMETYPE if self.gzip is not None else self.mimetype,
            )
        )
        location = (
            PrivateLocation(owner, self.key).url(api_root)
            if self.private
            else self.storage.url(self.key)
        )
        metadata = {
            "filename": self.filename,
            "hash": digest,
            "location": location,
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
            except StorageUnavailable as error:
                logger.warning("Could not remove unreferenced upload %s: %s", self.key, error)


def size_bound(length: int | None, limit: int) -> int | None:
    """The most bytes the file can have: the body's length, or the size limit (``0``:
    none) when lower. A chunked body gives none, even under a limit: S3 parts then grow
    with the file itself, not with a limit that may be far above it."""
    if length is None:
        return None
    return min(length, limit) if limit else length
