"""Streaming one upload into S3, with bounded memory.

A file up to the part size goes up in one ``PutObject``. A larger one becomes a multipart
upload, its parts sent as they arrive (see :mod:`..chunked`). Both ways are conditional
(``If-None-Match: *``): an existing object is never overwritten.

Parts, their buffers and their checksums: :mod:`.parts`.
"""

from __future__ import annotations

import logging

from ..base import StorageUnavailable, candidate_keys
from ..chunked import ChunkedWriter
from ..metadata import StoredFileMetadata
from .metadata import S3_ERRORS, encode_metadata, is_precondition_failed, unavailable
from .objects import S3Objects
from .parts import MAX_PARTS, PartBuffer, part_size

logger = logging.getLogger(__name__)


class S3Writer(ChunkedWriter):
    """Gathers up to one part; the first full part starts a multipart upload.

    ``size_hint`` is an upper bound of the file's size, when one is known: the part size
    is then chosen for 10,000 parts to hold it (see :func:`part_size`).
    """

    thread_name = "s3-parts"

    def __init__(
        self,
        storage: S3Objects,
        key: str,
        content_type: str,
        size_hint: int | None = None,
        *,
        private: bool = False,
    ):
        super().__init__(key)
        self._storage = storage
        self._acl = storage.acl_params(private)
        self._content_type = content_type
        self._size_hint = size_hint
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def _chunk_size(self) -> int:
        return part_size(self._storage.part_size, self._size_hint, self._handed + 1)

    def _cancel(self) -> None:
        """Abort the multipart upload, if any: its parts would stay billed otherwise. A
        failure is logged; :meth:`S3Storage.sweep_leftovers` aborts what remains."""
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._storage.call(
                "abort_multipart_upload", self._key, Key=self._key, UploadId=upload_id
            )
        except StorageUnavailable as error:
            logger.warning(
                "Multipart upload %s of %s left pending: %s", upload_id, self._key, error
            )

    def _store_whole(self, buffer: PartBuffer, metadata: StoredFileMetadata) -> str:
        """One conditional ``PutObject``; the next candidate name when one is taken."""
        storage = self._storage
        checksum = storage.checksum_params(buffer.body())
        for key in candidate_keys(self._key):
            try:
                storage.client.put_object(
                    Bucket=storage.bucket,
                    Key=key,
                    Body=buffer.body(),  # a fresh one: an attempt reads it to the end
                    ContentType=self._content_type,
                    Metadata=encode_metadata(metadata),
                    IfNoneMatch="*",
                    **checksum,
                    **self._acl,
                )
                return key
            except S3_ERRORS as error:
                if not is_precondition_failed(error):
                    raise unavailable("put_object", key, error) from error
        raise StorageUnavailable(f"no free name for {self._key}")

    def _open(self) -> None:
        """Pick a free name (``CompleteMultipartUpload`` cannot switch to another one) and
        start the upload there."""
        storage = self._storage
        for key in candidate_keys(self._key):
            if storage.head(key) is None:
                break
        else:
            raise StorageUnavailable(f"no free name for {self._key}")
        answer = storage.call(
            "create_multipart_upload",
            key,
            Key=key,
            ContentType=self._content_type,
            **self._acl,
        )
        self._key, self._upload_id = key, answer["UploadId"]

    def _send(self, number: int, buffer: PartBuffer) -> dict:
        if number > MAX_PARTS:
            raise StorageUnavailable(f"{self._key}: over {MAX_PARTS} parts")
        body = buffer.body()
        answer = self._storage.call(
            "upload_part",
            self._key,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            **self._storage.checksum_params(body),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _sent(self, receipt: object) -> None:
        assert isinstance(receipt, dict)
        self._parts.append(receipt)

    def _finish(self, last: PartBuffer, metadata: StoredFileMetadata) -> str:
        """Send the last part, complete (only if the name is still free), then write the
        metadata, known only now, with a copy onto itself. Should that fail, the object
        goes: no file is left without its metadata by this writer."""
        if last.filled:
            self._send_chunk()
            self._wait_for_chunk_in_flight()
        self._buffer = self._spare = None  # not needed for the (long) rest
        storage, key = self._storage, self._key
        try:
            storage.finishing_client.complete_multipart_upload(
                Bucket=storage.bucket,
                Key=key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
                IfNoneMatch="*",
            )
        except S3_ERRORS as error:
            raise unavailable("complete_multipart_upload", key, error) from error
        self._upload_id = None
        try:
            head = storage.head(key)
            if head is None:
                raise StorageUnavailable(f"{key!r} vanished right after its upload")
            storage.replace_metadata(key, head, metadata)
        except StorageUnavailable:
            try:
                storage.delete(key)
            except StorageUnavailable as error:
                logger.warning("Upload %s left without its metadata: %s", key, error)
            raise
        return key
