"""Who may write a record, or remove a stored file, right now: per-record and per-file
locks, in one process (memory backend) or shared by every worker and host through
PostgreSQL advisory locks on Kinto's own database."""

from ..config import LockSettings
from .base import RecordLocks, file_lock, lock_key
from .process import ProcessLocks

__all__ = ["ProcessLocks", "RecordLocks", "file_lock", "lock_key", "locks_from_settings"]


def locks_from_settings(settings: LockSettings) -> RecordLocks:
    """In-process locks, or PostgreSQL's when Kinto stores its records there."""
    if settings.postgresql_url is None:
        return ProcessLocks(settings.timeout_seconds)
    from .postgresql import PostgresLocks  # psycopg2 is an optional dependency

    return PostgresLocks(settings.postgresql_url, settings.timeout_seconds)
