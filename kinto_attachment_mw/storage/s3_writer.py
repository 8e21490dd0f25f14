"""Streaming one upload into S3, with bounded memory.

A file up to the part size goes up in one ``PutObject``. A larger one becomes a multipart
upload: each full part is sent by a background thread while the next one arrives from the
client, with at most one part in flight, so memory stays around two parts whatever the
file's size (a part is the buffer it was gathered in, never copied). Both ways are
conditional (``If-None-Match: *``): an existing object is never overwritten.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..errors import StorageUnavailable
from .base import FileWriter
from .s3_meta import S3_ERRORS, encode_metadata, is_precondition_failed, unavailable

if TYPE_CHECKING:
    from .s3 import S3Storage

logger = logging.getLogger(__name__)

#: S3 accepts at most this many parts in one upload.
MAX_PARTS = 10_000
_MAX_NAME_ATTEMPTS = 100


def candidate_keys(key: str) -> Iterator[str]:
    """``key``, then ``stem-1.ext``, ``stem-2.ext``...: the names local storage tries too."""
    stem, extension = posixpath.splitext(key)
    yield key
    for attempt in range(1, _MAX_NAME_ATTEMPTS):
        yield f"{stem}-{attempt}{extension}"


class S3Writer(FileWriter):
    """Buffers up to one part; the first full part starts a multipart upload."""

    def __init__(self, storage: S3Storage, key: str, content_type: str):
        self._storage = storage
        self._key = key
        self._content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future | None = None
        self._closed = False

    def write(self, chunk: bytes) -> None:
        if self._closed:
            raise StorageUnavailable(f"cannot write {self._key}: writer closed")
        self._buffer += chunk
        part_size = self._storage.part_size
        try:
            while len(self._buffer) >= part_size:
                self._send_part(part_size)
        except BaseException:
            self.abort()
            raise

    def commit(self, metadata: Mapping[str, object]) -> str:
        if self._closed:
            raise StorageUnavailable(f"cannot store {self._key}: writer closed")
        try:
            key = self._put(metadata) if self._upload_id is None else self._complete(metadata)
        except BaseException:
            self.abort()
            raise
        self._close()
        return key

    def abort(self) -> None:
        """Abort the multipart upload, if any: its parts would stay billed otherwise.

        The part in flight is waited for first, as one landing after the abort would stay
        too. A failure is logged; :meth:`S3Storage.sweep_leftovers` aborts what remains.
        """
        try:
            self._wait_for_part_in_flight()
        except BaseException as error:  # already failing: the abort matters more now
            logger.info("Part of %s not sent: %s", self._key, error)
        self._close()
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

    def _close(self) -> None:
        self._closed = True
        self._buffer = bytearray()
        if self._sender is not None:
            self._sender.shutdown(wait=False)

    def _put(self, metadata: Mapping[str, object]) -> str:
        """One conditional ``PutObject``; the next candidate name when one is taken."""
        storage = self._storage
        body = bytes(self._buffer)
        for key in candidate_keys(self._key):
            try:
                storage.client.put_object(
                    Bucket=storage.bucket,
                    Key=key,
                    Body=body,
                    ContentType=self._content_type,
                    Metadata=encode_metadata(metadata),
                    IfNoneMatch="*",
                    **storage.acl_params,
                )
                return key
            except S3_ERRORS as error:
                if not is_precondition_failed(error):
                    raise unavailable("put_object", key, error) from error
        raise StorageUnavailable(f"no free name for {self._key}")

    def _start(self) -> None:
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
            **storage.acl_params,
        )
        self._key, self._upload_id = key, answer["UploadId"]
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-parts")

    def _send_part(self, size: int) -> None:
        """Hand the first ``size`` buffered bytes to the sender, once the previous part
        is in S3 (so that a failure shows at most one part later)."""
        if self._upload_id is None:
            self._start()
        self._wait_for_part_in_flight()
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageUnavailable(f"{self._key}: over {MAX_PARTS} parts")
        # The buffer itself becomes the part (no copy of it); what is past the part, less
        # than a chunk, starts the next buffer.
        body, self._buffer = self._buffer, self._buffer[size:]
        del body[size:]
        assert self._sender is not None
        self._in_flight = self._sender.submit(self._upload_part, number, body)

    def _upload_part(self, number: int, body: bytearray) -> dict:
        answer = self._storage.call(
            "upload_part",
            self._key,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _wait_for_part_in_flight(self) -> None:
        future, self._in_flight = self._in_flight, None
        if future is not None:
            self._parts.append(future.result())

    def _complete(self, metadata: Mapping[str, object]) -> str:
        """Send the last part, complete (only if the name is still free), then write the
        metadata, known only now, with a copy onto itself. Should that fail, the object
        goes: no file is left without its metadata by this writer."""
        if self._buffer:
            self._send_part(len(self._buffer))
        self._wait_for_part_in_flight()
        storage, key = self._storage, self._key
        try:
            storage.client.complete_multipart_upload(
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
