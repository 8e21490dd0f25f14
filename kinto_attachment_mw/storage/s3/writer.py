"""Streaming one upload into S3, with bounded memory.

A file up to the part size goes up in one ``PutObject``. A larger one becomes a multipart
upload: each full part is sent by a background thread while the next one arrives from the
client, with at most one part in flight, so memory stays around two parts whatever the
file's size. Both ways are conditional (``If-None-Match: *``): an existing object is never
overwritten.

Parts, their buffers and their checksums: :mod:`.parts`.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from ..base import FileWriter, StorageUnavailable, candidate_keys
from ..metadata import StoredFileMetadata
from .metadata import S3_ERRORS, encode_metadata, is_precondition_failed, unavailable
from .objects import S3Objects
from .parts import MAX_PARTS, PartBuffer, part_size

logger = logging.getLogger(__name__)


class S3Writer(FileWriter):
    """Gathers up to one part; the first full part starts a multipart upload.

    ``size_hint`` is an upper bound of the file's size, when one is known: the part size
    is then chosen for 10,000 parts to hold it (see :func:`part_size`).
    """

    def __init__(
        self, storage: S3Objects, key: str, content_type: str, size_hint: int | None = None
    ):
        self._storage = storage
        self._key = key
        self._content_type = content_type
        self._size_hint = size_hint
        self._part_size = part_size(storage.part_size, size_hint, 1)
        # The part being gathered, and the other buffer, back from S3 and free for the
        # part after this one.
        self._buffer: PartBuffer | None = None
        self._spare: PartBuffer | None = None
        self._upload_id: str | None = None
        self._parts: list[dict] = []
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future | None = None
        self._closed = False

    def write(self, chunk: bytes) -> None:
        if self._closed:
            raise StorageUnavailable(f"cannot write {self._key}: writer closed")
        data = memoryview(chunk)
        try:
            while data:
                buffer = self._gathering()
                data = data[buffer.fill(data) :]
                if buffer.filled == buffer.size:
                    self._send_part()
        except BaseException:
            self.abort()
            raise

    def _gathering(self) -> PartBuffer:
        """The buffer of the part being gathered: the spare one if it has the part's size."""
        if self._buffer is None:
            spare, self._spare = self._spare, None
            fits = spare is not None and spare.size == self._part_size
            self._buffer = spare if fits else PartBuffer(self._part_size)
        return self._buffer

    def commit(self, metadata: StoredFileMetadata) -> str:
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
        self._buffer = self._spare = None  # unmapped once boto3 lets go of them too
        if self._sender is not None:
            self._sender.shutdown(wait=False)

    def _put(self, metadata: StoredFileMetadata) -> str:
        """One conditional ``PutObject``; the next candidate name when one is taken."""
        storage = self._storage
        buffer = self._gathering()
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

    def _send_part(self) -> None:
        """Hand the part gathered to the sender, once the previous part is in S3 (so that
        a failure shows at most one part later, and its buffer is free for the next)."""
        if self._upload_id is None:
            self._start()
        self._wait_for_part_in_flight()
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageUnavailable(f"{self._key}: over {MAX_PARTS} parts")
        buffer, self._buffer = self._gathering(), None
        self._part_size = part_size(self._storage.part_size, self._size_hint, number + 1)
        assert self._sender is not None
        self._in_flight = self._sender.submit(self._upload_part, number, buffer)

    def _upload_part(self, number: int, buffer: PartBuffer) -> tuple[dict, PartBuffer]:
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
        buffer.filled = 0
        return {"PartNumber": number, "ETag": answer["ETag"]}, buffer

    def _wait_for_part_in_flight(self) -> None:
        future, self._in_flight = self._in_flight, None
        if future is not None:
            part, self._spare = future.result()
            self._parts.append(part)

    def _complete(self, metadata: StoredFileMetadata) -> str:
        """Send the last part, complete (only if the name is still free), then write the
        metadata, known only now, with a copy onto itself. Should that fail, the object
        goes: no file is left without its metadata by this writer."""
        if self._buffer is not None and self._buffer.filled:
            self._send_part()
        self._wait_for_part_in_flight()
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
