"""Per-record locks shared by every process and host: PostgreSQL advisory locks on the
database Kinto itself uses, so deploying several workers needs nothing new.

Session-level locks on connections of a small pool, separate from Kinto's own: a lock
taken here never waits on, or holds up, Kinto's transactions. Should a process die while
holding one, PostgreSQL ends its session and the lock goes with it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from ..protocol import errors
from .base import RecordLocks, lock_key

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5


class PostgresLocks(RecordLocks):
    def __init__(self, url: str, timeout_seconds: float, max_connections: int = 16):
        self.url = url
        self.timeout_seconds = timeout_seconds
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._local = threading.local()  # this thread's connection while it holds locks

    @contextlib.contextmanager
    def hold(self, uri: str) -> Iterator[None]:
        key = lock_key(uri)
        with self._connection() as connection:
            self._lock(connection, key)
            try:
                yield
            finally:
                self._unlock(connection, key)

    def close(self) -> None:
        while True:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                return
            _close_quietly(connection)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg2.extensions.connection]:
        """This thread's connection: nested holds share one session (advisory locks are
        re-entrant within a session, so holding a URI twice does not deadlock)."""
        held = getattr(self._local, "connection", None)
        if held is not None:
            self._local.depth += 1
            try:
                yield held
            finally:
                self._local.depth -= 1
            return
        if not self._slots.acquire(timeout=self.timeout_seconds):
            raise errors.record_busy()
        connection = None
        try:
            connection = self._checkout()
            self._local.connection, self._local.depth = connection, 1
            yield connection
        finally:
            self._local.connection = None
            if connection is not None:
                if connection.closed:
                    logger.warning("Discarded a broken lock connection")
                else:
                    self._idle.put(connection)
            self._slots.release()

    def _checkout(self) -> psycopg2.extensions.connection:
        """An idle connection that still answers, else a new one."""
        while True:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                return connection
            except psycopg2.Error:
                _close_quietly(connection)  # the server restarted, or the network broke

    def _connect(self) -> psycopg2.extensions.connection:
        try:
            connection = psycopg2.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            connection.autocommit = True
            with connection.cursor() as cursor:
                timeout_ms = max(1, int(self.timeout_seconds * 1000))
                cursor.execute("SET lock_timeout = %s", (f"{timeout_ms}ms",))
        except psycopg2.Error as error:
            logger.error("Cannot connect to PostgreSQL for record locks: %s", error)
            raise errors.locks_unavailable() from error
        return connection

    def _lock(self, connection, key: int) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
        except (psycopg2.errors.LockNotAvailable, psycopg2.errors.DeadlockDetected):
            raise errors.record_busy() from None
        except psycopg2.Error as error:
            logger.error("Record lock failed: %s", error)
            _close_quietly(connection)
            raise errors.locks_unavailable() from error

    def _unlock(self, connection, key: int) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg2.Error as error:
            # Closing ends the session, which releases its locks on the server.
            logger.warning("Record unlock failed, dropping its connection: %s", error)
            _close_quietly(connection)


def _close_quietly(connection) -> None:
    with contextlib.suppress(psycopg2.Error):
        connection.close()
