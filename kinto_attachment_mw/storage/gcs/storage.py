"""Google Cloud Storage with google-cloud-storage.

Uploads stream through :class:`~.writer.GCSWriter`. What :meth:`FileWriter.commit` keeps
beside a file is the object's custom metadata (``record``, ``hash``, ``size``, ``shared``,
``referenced_at``), so a check costs one ``GET`` of the object's properties and an update
one ``PATCH``. Keys whose segments start with ``.`` (heartbeat probes) are not files.
Unfinished resumable uploads are not listed by GCS and expire after a week, costing
nothing meanwhile: the leftovers :meth:`GCSStorage.sweep_leftovers` finds are hidden
objects only.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator

from google.cloud import storage

from ...config.gcs import GCSSettings
from ..base import (
    FileWriter,
    Storage,
    StorageUnavailable,
    StoredFileInfo,
    copy_through,
    is_hidden,
)
from ..metadata import StoredFileMetadata
from .bucket import (
    CHUNK_SIZE,
    GCS_ERRORS,
    RETRY,
    TIMEOUT,
    GCSBucket,
    Retry,
    is_missing,
    is_precondition_failed,
)
from .writer import GCSWriter


class GCSStorage(Storage):
    #: As for S3: GCS, not the reading, sets an upload's pace; smaller reads keep fewer
    #: copies of the request's bytes in the server at once.
    upload_read_size = 128 * 1024

    def __init__(
        self,
        settings: GCSSettings,
        base_url: str = "",
        *,
        chunk_size: int = CHUNK_SIZE,
        timeout: tuple[float, float] = TIMEOUT,
        retry: Retry = RETRY,
        client: storage.Client | None = None,
    ):
        super().__init__(base_url)
        self.bucket = GCSBucket(
            settings, chunk_size=chunk_size, timeout=timeout, retry=retry, client=client
        )

    def ensure_bucket(self) -> None:
        self.bucket.ensure_exists()

    def close(self) -> None:
        """Close the client's pooled connections (the middleware's storage lives as long
        as its process; tests make many)."""
        self.bucket.client.close()

    def open_writer(
        self, key: str, content_type: str, size_hint: int | None = None, *, private: bool = False
    ) -> FileWriter:
        if not key or key.startswith("/") or "\x00" in key:
            raise StorageUnavailable(f"cannot write {key!r}: not a relative key")
        return GCSWriter(self.bucket, key, content_type, private=private)

    def delete(self, key: str) -> None:
        self.bucket.delete(key)

    def exists(self, key: str) -> bool:
        return self.bucket.get(key) is not None

    def download_url(
        self, key: str, content_type: str, disposition: str, expires_seconds: int
    ) -> str:
        """A V4 signed URL, signed here with the service account's key (no request to
        GCS). Credentials without a key (Application Default Credentials on a VM, an
        emulator's anonymous ones) cannot sign: 503, saying so."""
        endpoint = self.bucket.settings.endpoint_url
        try:
            return self.bucket.bucket.blob(key).generate_signed_url(
                version="v4",
                expiration=datetime.timedelta(seconds=expires_seconds),
                method="GET",
                response_type=content_type,
                response_disposition=disposition,
                **({"api_access_endpoint": endpoint} if endpoint else {}),
            )
        except (AttributeError, TypeError, ValueError, *GCS_ERRORS) as error:
            raise StorageUnavailable(
                f"cannot sign a download URL for {key!r} ({error}): give "
                "kinto.attachment.gcloud.credentials a service account key file"
            ) from error

    def metadata(self, key: str) -> StoredFileMetadata | None:
        blob = self.bucket.get(key)
        return None if blob is None else StoredFileMetadata.from_text(blob.metadata)

    def stat(self, key: str) -> StoredFileInfo | None:
        blob = self.bucket.get(key)
        return None if blob is None else _info(blob)

    def copy(self, key: str, new_key: str, metadata: StoredFileMetadata) -> str:
        """Read back and stored again, as an upload: its ACL set as objects are created
        (GCS's server-side rewrite would keep the source's, and a changed ACL is not
        honoured alike by every GCS server)."""
        source = self.bucket.get(key)
        if source is None:
            raise StorageUnavailable(f"cannot copy {key!r}: no such object")
        return copy_through(self, self.bucket.chunks(key), new_key, source.content_type, metadata)

    def update_metadata(
        self, key: str, change: Callable[[StoredFileMetadata], StoredFileMetadata]
    ) -> None:
        """A ``PATCH`` of the object's metadata, conditional on the metageneration just
        read, so that a concurrent change is never undone; retried once when that happens."""
        for _ in range(2):
            blob = self.bucket.get(key)
            metadata = None if blob is None else StoredFileMetadata.from_text(blob.metadata)
            if metadata is None:
                return
            try:
                self.bucket.write_metadata(
                    blob, change(metadata), if_metageneration_match=blob.metageneration
                )
                return
            except StorageUnavailable as error:
                cause = error.__cause__
                if not (is_precondition_failed(cause) or is_missing(cause)):
                    raise
        raise StorageUnavailable(f"cannot update the metadata of {key!r}: it keeps changing")

    def scan(self) -> Iterator[StoredFileInfo]:
        for blob in self.bucket.blobs():
            if not is_hidden(blob.name):
                yield _info(blob)

    def sweep_leftovers(self, older_than: float, dry_run: bool = False) -> Iterator[StoredFileInfo]:
        """Hidden objects (heartbeat probes whose delete failed) older than ``older_than``."""
        for blob in self.bucket.blobs():
            info = _info(blob)
            if is_hidden(blob.name) and info.modified < older_than:
                if not dry_run:
                    self.bucket.delete(blob.name, if_generation_match=blob.generation)
                yield info


def _info(blob: storage.Blob) -> StoredFileInfo:
    return StoredFileInfo(blob.name, blob.size or 0, blob.updated.timestamp())
