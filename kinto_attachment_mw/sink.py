"""The one pass over an upload's bytes: count, hash and store each chunk as it arrives."""

from __future__ import annotations

import hashlib
from typing import Protocol

from . import errors


class Writable(Protocol):
    def write(self, chunk: bytes) -> None: ...


class HashingSink:
    """Feeds a storage writer (or a compressor), keeping SHA-256 and size, and enforcing
    the size limit."""

    def __init__(self, writer: Writable, max_size_bytes: int = 0):
        self.writer = writer
        self.max_size_bytes = max_size_bytes
        self.size = 0
        self._sha256 = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_size_bytes and self.size > self.max_size_bytes:
            raise errors.too_large(self.size, self.max_size_bytes)
        self._sha256.update(chunk)
        self.writer.write(chunk)

    @property
    def hexdigest(self) -> str:
        return self._sha256.hexdigest()
