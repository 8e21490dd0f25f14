"""Locks for one process: Kinto on its memory backend lives in one process, so thread
locks are enough there."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from ..protocol import errors
from .base import RecordLocks


class ProcessLocks(RecordLocks):
    """One re-entrant lock per name, kept only while someone holds or waits for it, so
    memory follows the writes in progress and two names never wait on each other."""

    def __init__(self, timeout_seconds: float):
        self.timeout_seconds = timeout_seconds
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # name: [lock, holders and waiters]

    @contextlib.contextmanager
    def hold(self, uri: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(uri, [threading.RLock(), 0])
            entry[1] += 1
        try:
            if not entry[0].acquire(timeout=self.timeout_seconds):
                raise errors.record_busy()
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[uri]
