"""Amazon S3 (or any S3 API) storage with boto3.

Uploads stream through :class:`~.writer.S3Writer`. What :meth:`FileWriter.commit`
keeps beside a file is the object's user metadata (``x-amz-meta-record``, ``-hash``,
``-size``, ``-shared``), so a check costs a ``HEAD``. Keys whose segments start with
``.`` (heartbeat probes) are not files; pending multipart uploads are the leftovers
:meth:`S3Storage.sweep_leftovers` aborts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from botocore.config import Config

from ...config.s3 import S3Settings
from ..base import (
    FileWriter,
    Storage,
    StorageUnavailable,
    StoredFileInfo,
    candidate_keys,
    is_hidden,
)
from ..metadata import StoredFileMetadata
from .metadata import S3_ERRORS, decode_metadata, is_missing, is_precondition_failed, unavailable
from .objects import COPY_LIMIT, PART_SIZE, S3Objects
from .writer import S3Writer

logger = logging.getLogger(__name__)


class S3Storage(S3Objects, Storage):
    #: An upload holds two parts besides the request's reads, and S3, not the reading,
    #: sets its pace. gunicorn holds a few copies of each read at once (about 5 MiB with
    #: 1 MiB reads): 128 KiB reads take 2-3 MiB off the peak, at the same speed and about
    #: 5% more CPU.
    upload_read_size = 128 * 1024

    def __init__(
        self,
        settings: S3Settings,
        base_url: str = "",
        *,
        part_size: int = PART_SIZE,
        copy_limit: int = COPY_LIMIT,
        client_config: Config | None = None,
    ):
        Storage.__init__(self, base_url)
        S3Objects.__init__(
            self, settings, part_size=part_size, copy_limit=copy_limit, client_config=client_config
        )

    def open_writer(
        self, key: str, content_type: str, size_hint: int | None = None, *, private: bool = False
    ) -> FileWriter:
        if not key or key.startswith("/") or "\x00" in key:
            raise StorageUnavailable(f"cannot write {key!r}: not a relative key")
        return S3Writer(self, key, content_type, size_hint, private=private)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def download_url(
        self, key: str, content_type: str, disposition: str, expires_seconds: int
    ) -> str:
        """Signed here, with the configured credentials: no request to S3."""
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": disposition,
        }
        try:
            return self.presigning_client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_seconds
            )
        except S3_ERRORS as error:
            raise unavailable("presign", key, error) from error

    def metadata(self, key: str) -> StoredFileMetadata | None:
        head = self.head(key)  # S3 failing raises: "no metadata" would mean a plugin's file
        return None if head is None else decode_metadata(head.get("Metadata", {}))

    def stat(self, key: str) -> StoredFileInfo | None:
        head = self.head(key)
        if head is None:
            return None
        return StoredFileInfo(key, head["ContentLength"], head["LastModified"].timestamp())

    def copy(self, key: str, new_key: str, metadata: StoredFileMetadata) -> str:
        """A server-side copy (in parts past ``CopyObject``'s limit) to a free name."""
        head = self.head(key)
        if head is None:
            raise StorageUnavailable(f"cannot copy {key!r}: no such object")
        for candidate in candidate_keys(new_key):
            if self.head(candidate) is None:
                self.copy_object(key, candidate, head, metadata)
                return candidate
        raise StorageUnavailable(f"no free name for {new_key}")

    def update_metadata(
        self, key: str, change: Callable[[StoredFileMetadata], StoredFileMetadata]
    ) -> None:
        """Rewrites the object's metadata in place (a server-side copy onto itself).

        Conditional on the ``ETag`` just read, so that a concurrent change is never undone;
        retried once when that happens.
        """
        for _ in range(2):
            head = self.head(key)
            metadata = None if head is None else decode_metadata(head.get("Metadata", {}))
            if metadata is None:
                return
            try:
                self.replace_metadata(key, head, change(metadata))
                return
            except StorageUnavailable as error:
                cause = error.__cause__
                if not (is_precondition_failed(cause) or is_missing(cause)):
                    raise
        raise StorageUnavailable(f"cannot update the metadata of {key!r}: it keeps changing")

    def scan(self) -> Iterator[StoredFileInfo]:
        for item in self._objects():
            if not is_hidden(item["Key"]):
                yield StoredFileInfo(item["Key"], item["Size"], item["LastModified"].timestamp())

    def sweep_leftovers(self, older_than: float, dry_run: bool = False) -> Iterator[StoredFileInfo]:
        """Multipart uploads idle since before ``older_than`` and never completed (their
        parts are billed), and hidden objects (heartbeat probes whose delete failed).

        An upload counts as idle from its last part, not its start: one that has been
        streaming for longer than the grace period is still in progress."""
        for upload in self._pending_uploads():
            if upload["Initiated"].timestamp() >= older_than:
                continue
            key, upload_id = upload["Key"], upload["UploadId"]
            parts = self._parts(key, upload_id)
            if parts is None:
                continue  # completed or aborted meanwhile
            size, last_active = parts
            last_active = max(last_active, upload["Initiated"].timestamp())
            if last_active >= older_than:
                continue
            if not dry_run:
                self.call("abort_multipart_upload", key, Key=key, UploadId=upload_id)
            yield StoredFileInfo(key, size, last_active)
        for item in self._objects():
            modified = item["LastModified"].timestamp()
            if is_hidden(item["Key"]) and modified < older_than:
                if not dry_run:
                    self.delete(item["Key"])
                yield StoredFileInfo(item["Key"], item["Size"], modified)

    def _pages(self, operation: str, result_key: str, **params) -> Iterator[dict]:
        try:
            for page in self.client.get_paginator(operation).paginate(Bucket=self.bucket, **params):
                yield from page.get(result_key, [])
        except S3_ERRORS as error:
            raise unavailable(operation, self.bucket, error) from error

    def _objects(self) -> Iterator[dict]:
        return self._pages("list_objects_v2", "Contents")

    def _pending_uploads(self) -> Iterator[dict]:
        return self._pages("list_multipart_uploads", "Uploads")

    def _parts(self, key: str, upload_id: str) -> tuple[int, float] | None:
        """Total size and time of the latest part of a pending upload; ``None`` once it
        is no longer pending."""
        size, last_active = 0, 0.0
        try:
            for part in self._pages("list_parts", "Parts", Key=key, UploadId=upload_id):
                size += part["Size"]
                last_active = max(last_active, part["LastModified"].timestamp())
        except StorageUnavailable as error:
            if is_missing(error.__cause__):
                return None
            raise
        return size, last_active
