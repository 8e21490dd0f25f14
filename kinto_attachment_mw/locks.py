"""Per-record locks around "check the version, write the record, remove the previous file".

Kinto's ``If-Match`` is not atomic across processes on PostgreSQL: concurrent writes that
carry the same version can all succeed, and every loser's file is then orphaned. Holding
a lock on the record URI for the few milliseconds of the write (never while a body
streams) makes the conditional write pick exactly one winner.

Kinto on its memory backend lives in one process, so striped thread locks are enough.
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
    """Striped re-entrant locks: bounded memory whatever the number of records.

    Two URIs may share a stripe and then wait for each other briefly; correctness only
    needs the same URI to always map to the same lock.
    """

    def __init__(self, timeout_seconds: float, stripes: int = 1024):
        self.timeout_seconds = timeout_seconds
        self._stripes = [threading.RLock() for _ in range(stripes)]

    @contextlib.contextmanager
    def hold(self, uri: str) -> Iterator[None]:
        lock = self._stripes[lock_key(uri) % len(self._stripes)]
        if not lock.acquire(timeout=self.timeout_seconds):
            raise errors.record_busy()
        try:
            yield
        finally:
            lock.release()


def locks_from_settings(settings: LockSettings) -> RecordLocks:
    if settings.postgresql_url is None:
        return ProcessLocks(settings.timeout_seconds)
    from .pg_locks import PostgresLocks

    return PostgresLocks(settings.postgresql_url, settings.timeout_seconds)
