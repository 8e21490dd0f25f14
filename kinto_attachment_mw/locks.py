"""Per-record locks around "check the version, write the record, remove the previous file".

Kinto's ``If-Match`` is not atomic across processes on PostgreSQL: concurrent writes that
carry the same version can all succeed, and every loser's file is then orphaned. Holding
a lock on the record URI for the few milliseconds of the write (never while a body
streams) makes the conditional write pick exactly one winner.

Kinto on its memory backend lives in one process, so thread locks are enough.
On PostgreSQL, several workers and hosts share Kinto's database, so the lock is a
session-level advisory lock there.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator

from . import errors
from .settings import LockSettings

#: Hashed with each URI, so that other users of advisory locks in Kinto's database are
#: unlikely to collide with ours.
_NAMESPACE = b"kinto-attachment-mw:"


def lock_key(uri: str) -> int:
    """A stable signed 64-bit key for ``uri`` (PostgreSQL's ``bigint``)."""
    digest = hashlib.sha256(_NAMESPACE + uri.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RecordLocks:
    """``with locks.hold(uri): ...`` serializes writers of one record.

    Holding the same URI again in the same thread does not block. Raises
    :func:`errors.record_busy` (409) when the lock is not obtained within the timeout.
    """

    def hold(self, uri: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def close(self) -> None:
        """Release any resource (connections)."""


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


def locks_from_settings(settings: LockSettings) -> RecordLocks:
    if settings.postgresql_url is None:
        return ProcessLocks(settings.timeout_seconds)
    from .pg_locks import PostgresLocks

    return PostgresLocks(settings.postgresql_url, settings.timeout_seconds)
