"""Streaming one upload into Google Cloud Storage, with bounded memory.

A file up to the chunk size goes up in one request, its metadata with it. A larger one
becomes a resumable upload: each full chunk is sent by a background thread while the next
one arrives from the client, with at most one chunk in flight, so memory stays around two
chunks whatever the file's size. Both ways are conditional (``ifGenerationMatch=0``): an
existing object is never overwritten. An aborted upload cancels its resumable session.

The session is driven with GCS's resumable protocol itself (``Content-Range`` on each
chunk, ``308`` until the last): google-cloud-storage's own writer cannot be cancelled.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor

from ..base import FileWriter, StorageUnavailable, candidate_keys
from ..buffers import PartBuffer
from ..metadata import StoredFileMetadata
from .bucket import GCS_ERRORS, GCSBucket, is_precondition_failed, unavailable

logger = logging.getLogger(__name__)

#: GCS answers a chunk it took, but not the last, with 308 and the bytes it holds.
_INCOMPLETE = 308
_PERSISTED_RE = re.compile(r"^bytes=0-(\d+)$")


class GCSWriter(FileWriter):
    """Gathers up to one chunk; the first full chunk starts a resumable upload."""

    def __init__(self, bucket: GCSBucket, key: str, content_type: str):
        self._bucket = bucket
        self._key = key
        self._content_type = content_type
        # The chunk being gathered, and the other buffer, back from GCS and free.
        self._buffer: PartBuffer | None = None
        self._spare: PartBuffer | None = None
        self._session: str | None = None
        self._sent = 0  # bytes GCS holds of the resumable upload
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
                    self._send_chunk()
        except BaseException:
            self.abort()
            raise

    def _gathering(self) -> PartBuffer:
        if self._buffer is None:
            spare, self._spare = self._spare, None
            self._buffer = spare or PartBuffer(self._bucket.chunk_size)
        return self._buffer

    def commit(self, metadata: StoredFileMetadata) -> str:
        if self._closed:
            raise StorageUnavailable(f"cannot store {self._key}: writer closed")
        try:
            key = self._upload(metadata) if self._session is None else self._finish(metadata)
        except BaseException:
            self.abort()
            raise
        self._close()
        return key

    def abort(self) -> None:
        """Cancel the resumable session, if any: GCS would keep its bytes for a week.

        The chunk in flight is waited for first. A failure is logged: the session then
        expires by itself, and no object is made of it."""
        try:
            self._wait_for_chunk_in_flight()
        except BaseException as error:  # already failing: the cancel matters more now
            logger.info("Chunk of %s not sent: %s", self._key, error)
        self._close()
        session, self._session = self._session, None
        if session is None:
            return
        try:
            response = self._bucket.client._http.delete(session, timeout=self._bucket.timeout)
            if response.status_code not in (499, 200, 204, 404, 410):
                raise StorageUnavailable(f"status {response.status_code}")
            logger.info("Resumable upload of %s cancelled", self._key)
        except (StorageUnavailable, *GCS_ERRORS) as error:
            logger.warning("Resumable upload of %s left pending: %s", self._key, error)

    def _close(self) -> None:
        self._closed = True
        self._buffer = self._spare = None
        if self._sender is not None:
            self._sender.shutdown(wait=False)

    def _upload(self, metadata: StoredFileMetadata) -> str:
        """One conditional request, metadata included; the next candidate name when one
        is taken."""
        bucket = self._bucket
        content = bytes(self._gathering().body().read())  # the library takes bytes only
        self._buffer = None
        for key in candidate_keys(self._key):
            blob = bucket.blob(key, self._content_type)
            blob.metadata = metadata.to_text()
            try:
                blob.upload_from_string(
                    content,
                    content_type=self._content_type,
                    if_generation_match=0,
                    **bucket.acl_params,
                    **bucket.call_params,
                )
                return key
            except GCS_ERRORS as error:
                if not is_precondition_failed(error):
                    raise unavailable("upload", key, error) from error
        raise StorageUnavailable(f"no free name for {self._key}")

    def _start(self) -> None:
        """Pick a free name (a session is bound to one) and open a session there, only
        for an object that does not exist when it completes."""
        bucket = self._bucket
        for key in candidate_keys(self._key):
            if bucket.get(key) is None:
                break
        else:
            raise StorageUnavailable(f"no free name for {self._key}")
        blob = bucket.blob(key, self._content_type)
        try:
            self._session = blob.create_resumable_upload_session(
                content_type=self._content_type,
                if_generation_match=0,
                checksum=None,
                **bucket.acl_params,
                **bucket.call_params,
            )
        except GCS_ERRORS as error:
            raise unavailable("resumable upload", key, error) from error
        self._key = key
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcs-chunks")

    def _send_chunk(self) -> None:
        """Hand the chunk gathered to the sender, once the previous one is in GCS."""
        if self._session is None:
            self._start()
        self._wait_for_chunk_in_flight()
        buffer, self._buffer = self._gathering(), None
        assert self._sender is not None
        self._in_flight = self._sender.submit(self._put_chunk, buffer, None)

    def _wait_for_chunk_in_flight(self) -> None:
        future, self._in_flight = self._in_flight, None
        if future is not None:
            self._sent, self._spare = future.result()

    def _put_chunk(self, buffer: PartBuffer, total: int | None) -> tuple[int, PartBuffer]:
        """Send ``buffer`` from where GCS stands (``total``: the last chunk, of a file of
        that size); resend what GCS says it did not keep. Returns what GCS holds."""
        start, end = self._sent, self._sent + buffer.filled
        held = start
        while True:
            sent_from = held - start
            size = "*" if total is None else str(total)
            span = f"{held}-{end - 1}" if held < end else "*"
            try:
                response = self._bucket.client._http.put(
                    self._session,
                    data=buffer.body(sent_from),
                    headers={"Content-Range": f"bytes {span}/{size}"},
                    timeout=self._bucket.timeout,
                )
            except GCS_ERRORS as error:
                raise unavailable("chunk upload", self._key, error) from error
            if total is not None and response.status_code in (200, 201):
                return total, buffer
            if response.status_code != _INCOMPLETE:
                raise StorageUnavailable(
                    f"GCS chunk upload of {self._key!r} failed: {response.status_code}"
                    f" {response.text[:200]}"
                )
            now_held = _held(response.headers.get("Range"))
            if now_held >= end and total is None:
                buffer.filled = 0
                return now_held, buffer
            if now_held <= held:
                raise StorageUnavailable(f"GCS took none of a chunk of {self._key!r}")
            held = now_held

    def _finish(self, metadata: StoredFileMetadata) -> str:
        """Send the last chunk, then write the metadata, known only now. Should that fail,
        the object goes: no file is left without its metadata by this writer."""
        self._wait_for_chunk_in_flight()
        buffer = self._gathering()
        self._put_chunk(buffer, self._sent + buffer.filled)
        self._buffer = self._spare = None
        bucket, key = self._bucket, self._key
        self._session = None
        try:
            blob = bucket.get(key)
            if blob is None:
                raise StorageUnavailable(f"{key!r} vanished right after its upload")
            bucket.write_metadata(blob, metadata, if_generation_match=blob.generation)
        except StorageUnavailable:
            try:
                bucket.delete(key)
            except StorageUnavailable as error:
                logger.warning("Upload %s left without its metadata: %s", key, error)
            raise
        return key


def _held(range_header: str | None) -> int:
    """How many bytes GCS holds, from a 308's ``Range: bytes=0-N`` (none without one)."""
    match = _PERSISTED_RE.match(range_header or "")
    return int(match.group(1)) + 1 if match else 0
