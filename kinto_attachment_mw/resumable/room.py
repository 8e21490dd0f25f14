"""What unfinished uploads hold, counted where every worker of the host sees it: in the
spool folder, changed under one lock (``room.lock``, ``flock``: every process and thread
of the host; on NFS, the server's locks).

Per principal, ``owners/{hash}/{id}`` marks each of their uploads (its declared length
and when it stops counting): a creation lists that folder only, which the limit keeps
small. For all of them, ``room.ledger`` keeps the declared bytes by the moment they stop
counting (an upload's expiry rounded up to :data:`GRANULARITY`): expired uploads leave
the total even when nobody removed them yet, and a count a crash left wrong (a mark
without its ledger bytes, or the reverse) heals when its moment passes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator

from . import folder

logger = logging.getLogger(__name__)

#: Seconds: an expired upload stops counting towards the quota at most this late.
GRANULARITY = 300.0


class Room:
    def __init__(self, path: str):
        self.path = path
        self._owners = os.path.join(path, "owners")
        self._ledger = os.path.join(path, "room.ledger")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the spool's lock; counts are read and changed only within (not re-entrant)."""
        fd = os.open(
            os.path.join(self.path, "room.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def marks(self, owner: str) -> list[str]:
        """The ids of the uploads marked as ``owner``'s."""
        try:
            with os.scandir(self._owner_folder(owner)) as entries:
                return [entry.name for entry in entries if "." not in entry.name]
        except FileNotFoundError:
            return []

    def mark(self, owner: str, upload_id: str, length: int, expires_at: float) -> None:
        """Count a new upload (within :meth:`locked`)."""
        until = _until(expires_at)
        owner_folder = self._owner_folder(owner)
        with contextlib.suppress(FileExistsError):
            os.makedirs(owner_folder, mode=0o700)
        fd = folder.open_new(os.path.join(owner_folder, upload_id))
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"length": length, "until": until}, out)
        ledger = self._read_ledger()
        ledger[until] = ledger.get(until, 0) + length
        self._write_ledger(ledger)

    def unmark(self, owner: str, upload_id: str) -> None:
        """Stop counting an upload (within :meth:`locked`); nothing when it was not counted."""
        path = os.path.join(self._owner_folder(owner), upload_id)
        try:
            fd = folder.open_existing(path, os.O_RDONLY)
            with os.fdopen(fd, encoding="utf-8") as marked:
                mark = json.load(marked)
            length, until = int(mark["length"]), int(mark["until"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError):
            length, until = 0, 0  # unreadable: its bytes leave the ledger with their moment
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        ledger = self._read_ledger()
        if until in ledger:
            ledger[until] = max(0, ledger[until] - length)
            self._write_ledger(ledger)

    def total(self, now: float) -> int:
        """Bytes declared by the uploads that still count (within :meth:`locked`)."""
        return sum(size for until, size in self._read_ledger().items() if until > now)

    def _owner_folder(self, owner: str) -> str:
        digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:32]
        return os.path.join(self._owners, digest)

    def _read_ledger(self) -> dict[int, int]:
        try:
            fd = folder.open_existing(self._ledger, os.O_RDONLY)
            with os.fdopen(fd, encoding="utf-8") as ledger:
                return {int(until): int(size) for until, size in json.load(ledger).items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, AttributeError) as error:
            logger.warning(
                "Resumable uploads: %s unreadable (%s), counted anew", self._ledger, error
            )
            return {}

    def _write_ledger(self, ledger: dict[int, int]) -> None:
        now = time.time()  # moments past are dropped: the ledger stays as small as the expiry
        kept = {str(until): size for until, size in ledger.items() if size > 0 and until > now}
        temp = f"{self._ledger}.{uuid.uuid4().hex}"
        with os.fdopen(folder.open_new(temp), "w", encoding="utf-8") as out:
            json.dump(kept, out)
        os.replace(temp, self._ledger)


def _until(expires_at: float) -> int:
    return int(math.ceil(expires_at / GRANULARITY) * GRANULARITY)
