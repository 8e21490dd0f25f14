"""Per-record locks around "check the version, write the record, remove the previous file".

Kinto's ``If-Match`` is not atomic across processes on PostgreSQL: concurrent writes that
carry the same version can all succeed, and every loser's file is then orphaned. Holding
a lock on the record URI for the few milliseconds of the write (never while a body
streams) makes the conditional write pick exactly one winner.

The same locks keep a stored file's removal from slipping between the check that it
may go and its deletion (:func:`file_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib

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


def file_lock(key: str) -> str:
    """The lock name of a stored file, apart from every record's (whose names are their
    URIs, which start with ``/``)."""
    return "file:" + key
