"""Streaming one upload into Google Cloud Storage, with bounded memory.

A file up to the chunk size goes up in one request, its metadata with it. A larger one
becomes a resumable upload, its chunks sent as they arrive (see :mod:`..chunked`). Both
ways are conditional (``ifGenerationMatch=0``): an existing object is never overwritten.
An aborted upload cancels its resumable session.

The session is driven with GCS's resumable protocol itself (``Content-Range`` on each
chunk, ``308`` until the last): google-cloud-storage's own writer cannot be cancelled.
"""

from __future__ import annotations

import logging
import re

from ..base import StorageUnavailable, candidate_keys
from ..buffers import PartBuffer
from ..chunked import ChunkedWriter
from ..metadata import StoredFileMetadata
from .bucket import GCS_ERRORS, GCSBucket, is_precondition_failed, unavailable

logger = logging.getLogger(__name__)

#: GCS answers a chunk it took, but not the last, with 308 and the bytes it holds.
_INCOMPLETE = 308
_PERSISTED_RE = re.compile(r"^bytes=0-(\d+)$")


class GCSWriter(ChunkedWriter):
    """Gathers up to one chunk; the first full chunk starts a resumable upload."""

    thread_name = "gcs-chunks"

    def __init__(self, bucket: GCSBucket, key: str, content_type: str, *, private: bool = False):
        super().__init__(key)
        self._bucket = bucket
        self._acl = bucket.acl_params(private)
        self._content_type = content_type
        self._session: str | None = None
        self._sent_bytes = 0  # bytes GCS holds of the resumable upload

    def _chunk_size(self) -> int:
        return self._bucket.chunk_size

    def _cancel(self) -> None:
        """Cancel the resumable session, if any: GCS would keep its bytes for a week. A
        failure is logged: the session then expires by itself, and no object is made
        of it."""
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

    def _store_whole(self, buffer: PartBuffer, metadata: StoredFileMetadata) -> str:
        """One conditional request, metadata included; the next candidate name when one
        is taken."""
        bucket = self._bucket
        content = bytes(buffer.body().read())  # the library takes bytes only
        for key in candidate_keys(self._key):
            blob = bucket.blob(key, self._content_type)
            blob.metadata = metadata.to_text()
            try:
                blob.upload_from_string(
                    content,
                    content_type=self._content_type,
                    if_generation_match=0,
                    **self._acl,
                    **bucket.call_params,
                )
                return key
            except GCS_ERRORS as error:
                if not is_precondition_failed(error):
                    raise unavailable("upload", key, error) from error
        raise StorageUnavailable(f"no free name for {self._key}")

    def _open(self) -> None:
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
                **self._acl,
                **bucket.call_params,
            )
        except GCS_ERRORS as error:
            raise unavailable("resumable upload", key, error) from error
        self._key = key

    def _send(self, number: int, buffer: PartBuffer) -> int:
        return self._put_chunk(buffer, None)

    def _sent(self, receipt: object) -> None:
        assert isinstance(receipt, int)
        self._sent_bytes = receipt

    def _put_chunk(self, buffer: PartBuffer, total: int | None) -> int:
        """Send ``buffer`` from where GCS stands (``total``: the last chunk, of a file of
        that size); resend what GCS says it did not keep. Returns what GCS holds."""
        start, end = self._sent_bytes, self._sent_bytes + buffer.filled
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
                return total
            if response.status_code != _INCOMPLETE:
                raise StorageUnavailable(
                    f"GCS chunk upload of {self._key!r} failed: {response.status_code}"
                    f" {response.text[:200]}"
                )
            now_held = _held(response.headers.get("Range"))
            if now_held >= end and total is None:
                return now_held
            if now_held <= held:
                raise StorageUnavailable(f"GCS took none of a chunk of {self._key!r}")
            held = now_held

    def _finish(self, last: PartBuffer, metadata: StoredFileMetadata) -> str:
        """Send the last chunk, then write the metadata, known only now. Should that fail,
        the object goes: no file is left without its metadata by this writer."""
        self._put_chunk(last, self._sent_bytes + last.filled)
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
