"""The streaming writer that the S3 and GCS backends share: a file gathered chunk by
chunk, sent to the service as it arrives, with bounded memory.

Two buffers take turns: while a background thread sends a full chunk, the next one fills
from the client. At most one chunk is in flight, so memory stays around two chunks
whatever the file's size, and a failure shows at most one chunk later. A file that fits
in the first chunk goes up in one request; a larger one opens the service's own upload
(S3's multipart upload, GCS's resumable session) with the first full chunk.
"""

from __future__ import annotations

import abc
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from .base import FileWriter, StorageUnavailable
from .buffers import PartBuffer
from .metadata import StoredFileMetadata

logger = logging.getLogger(__name__)


class ChunkedWriter(FileWriter):
    """What a service's writer adds: the next chunk's size, how to store a file of one
    chunk, how to open the service's upload, send one chunk, finish it and cancel it."""

    #: Names the sender thread, in thread dumps.
    thread_name = "chunks"

    def __init__(self, key: str):
        self._key = key
        # The chunk being gathered, and the other buffer, back from the service and free.
        self._buffer: PartBuffer | None = None
        self._spare: PartBuffer | None = None
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future | None = None
        self._handed = 0  # chunks handed to the sender
        self._closed = False

    # What each service does

    @abc.abstractmethod
    def _chunk_size(self) -> int:
        """The size of the chunk gathered next."""

    @abc.abstractmethod
    def _store_whole(self, buffer: PartBuffer, metadata: StoredFileMetadata) -> str:
        """Store a file that fits in one chunk, in one request; return its key."""

    @abc.abstractmethod
    def _open(self) -> None:
        """Open the service's upload, under a free name (``self._key`` then names it)."""

    @abc.abstractmethod
    def _send(self, number: int, buffer: PartBuffer) -> object:
        """Send full chunk ``number`` (from 1), on the sender thread; return what
        :meth:`_sent` records."""

    @abc.abstractmethod
    def _sent(self, receipt: object) -> None:
        """Record a chunk the service took (on the request's thread)."""

    @abc.abstractmethod
    def _finish(self, last: PartBuffer, metadata: StoredFileMetadata) -> str:
        """Send the last chunk (maybe empty), complete the upload; return the key."""

    @abc.abstractmethod
    def _cancel(self) -> None:
        """Drop the service's upload, if one is open; log what could not be dropped."""

    @property
    def _opened(self) -> bool:
        return self._sender is not None

    # The stream

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

    def commit(self, metadata: StoredFileMetadata) -> str:
        if self._closed:
            raise StorageUnavailable(f"cannot store {self._key}: writer closed")
        try:
            if self._opened:
                self._wait_for_chunk_in_flight()
                last = self._gathering()
                key = self._finish(last, metadata)
            else:
                key = self._store_whole(self._gathering(), metadata)
        except BaseException:
            self.abort()
            raise
        self._close()
        return key

    def abort(self) -> None:
        """Cancel the service's upload, once the chunk in flight is back (one landing
        after the cancel would stay)."""
        try:
            self._wait_for_chunk_in_flight()
        except BaseException as error:  # already failing: the cancel matters more now
            logger.info("Chunk of %s not sent: %s", self._key, error)
        self._close()
        self._cancel()

    def _gathering(self) -> PartBuffer:
        """The buffer of the chunk being gathered: the spare one if it has the size."""
        if self._buffer is None:
            spare, self._spare = self._spare, None
            size = self._chunk_size()
            self._buffer = spare if spare is not None and spare.size == size else PartBuffer(size)
        return self._buffer

    def _send_chunk(self) -> None:
        """Hand the chunk gathered to the sender, once the previous one is in."""
        if not self._opened:
            self._open()
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.thread_name)
        self._wait_for_chunk_in_flight()
        buffer, self._buffer = self._gathering(), None
        self._handed += 1
        assert self._sender is not None
        self._in_flight = self._sender.submit(self._send_and_free, self._handed, buffer)

    def _send_and_free(self, number: int, buffer: PartBuffer) -> tuple[object, PartBuffer]:
        receipt = self._send(number, buffer)
        buffer.filled = 0
        return receipt, buffer

    def _wait_for_chunk_in_flight(self) -> None:
        future, self._in_flight = self._in_flight, None
        if future is not None:
            receipt, self._spare = future.result()
            self._sent(receipt)

    def _close(self) -> None:
        self._closed = True
        self._buffer = self._spare = None  # unmapped once the HTTP client lets go too
        if self._sender is not None:
            self._sender.shutdown(wait=False)
