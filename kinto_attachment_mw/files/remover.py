"""When a stored file may be deleted: one rule, decided under the file's lock, that every
removal goes through (a replaced or removed attachment, a deleted record, collection or
bucket, Kinto's flush, garbage collection).

Request code calls it only after Kinto confirmed the change, so a failure here can leave
an orphan for ``gc`` but never a record pointing at a missing file.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from ..config import Settings
from ..locks import RecordLocks, file_lock
from ..protocol.errors import AttachmentError
from ..protocol.paths import RecordPath
from ..storage import Storage, StorageUnavailable
from ..storage.base import is_private_key
from ..storage.metadata import StoredFileMetadata
from .locations import key_for

logger = logging.getLogger(__name__)


class Verdict(enum.Enum):
    """What became of a file asked to go."""

    REMOVED = "removed"
    WOULD_REMOVE = "would be removed (dry run)"
    KEPT_BY_SETTING = "kept: keep_old_files"
    NOT_OWNED = "kept: not stored for that record, or not with that content"
    SHARED = "kept: other records reference it too"
    REFERENCED_AGAIN = "kept: given to a record again meanwhile"
    GONE = "not removed: gone, or stored again under the same name, meanwhile"
    UNCHECKED = "not removed: the storage or its lock could not say"
    FAILED = "not removed: the delete failed"


@dataclass(frozen=True)
class Removal:
    """A file that should go, and what must still hold for it to go."""

    key: str
    #: The record whose change dropped the file, and the hash it described: the file
    #: goes only if it was stored for that record, with that content, and no copy of it
    #: was ever accepted (a location can be copied onto another record, or forged).
    #: ``None``: no record references the file at all (flush, garbage collection).
    dropped_by: RecordPath | None = None
    hash: str | None = None
    #: When the caller learnt the file was unreferenced: a reference noted since keeps it.
    planned_at: float | None = None
    #: Only a file last written before this (epoch seconds): a new upload may have
    #: taken the name of an old orphan meanwhile.
    written_before: float | None = None


class FileRemover:
    """``keep_old_files`` of the collection a file belongs to (the global setting for a
    file of no known record; nothing is kept without ``settings``) wins over everything."""

    def __init__(self, storage: Storage, locks: RecordLocks, settings: Settings | None = None):
        self.storage = storage
        self.locks = locks
        self.settings = settings

    def remove(self, removal: Removal, dry_run: bool = False) -> Verdict:
        """Decide, and delete unless ``dry_run``. Never raises for the storage or the
        lock failing: the file is then left to garbage collection."""
        key = removal.key
        try:
            with self.locks.hold(file_lock(key)):  # no copy accepted between check and delete
                verdict = self._verdict(removal)
                if verdict is None and dry_run:
                    verdict = Verdict.WOULD_REMOVE
                if verdict is None and removal.written_before is not None:
                    current = self.storage.stat(key)
                    if current is None or current.modified >= removal.written_before:
                        verdict = Verdict.GONE
                if verdict is not None:
                    logger.info("%s: %s", key, verdict.value)
                    if verdict in _KEPT_AFTER_ITS_OWNER and not dry_run:
                        self._note_owner_dropped(removal)
                    return verdict
                try:
                    self.storage.delete(key)
                except StorageUnavailable as error:
                    logger.warning("Could not remove attachment file %s: %s", key, error)
                    return Verdict.FAILED
        except (StorageUnavailable, AttachmentError) as error:
            logger.warning("Could not check attachment file %s: %s", key, error)
            return Verdict.UNCHECKED
        return Verdict.REMOVED

    def _verdict(self, removal: Removal) -> Verdict | None:
        """Why the file stays, or ``None`` when it may go. The caller holds its lock."""
        if removal.dropped_by is not None and self._kept_by_setting(removal.dropped_by):
            return Verdict.KEPT_BY_SETTING  # known without reading the storage
        stored = self.storage.metadata(removal.key)
        if removal.dropped_by is not None:
            described = (removal.dropped_by, removal.hash)
            if removal.hash is None or stored is None or (stored.owner, stored.hash) != described:
                return Verdict.NOT_OWNED  # the older plugin's files too: gc decides
            if stored.shared:
                return Verdict.SHARED
        if removal.planned_at is not None and _referenced_since(stored, removal.planned_at):
            return Verdict.REFERENCED_AGAIN
        if removal.dropped_by is None and self._kept_by_setting(stored.owner if stored else None):
            return Verdict.KEPT_BY_SETTING
        return None

    def _note_owner_dropped(self, removal: Removal) -> None:
        """A private file its owner let go of stays (copies, ``keep_old_files``): say so
        beside it, so that downloads serve it to no one (see ``serving/downloads.py``);
        a record created again under the owner's id, or given the file back by a copy,
        must not read it. The caller holds the file's lock."""
        if removal.dropped_by is None or not is_private_key(removal.key):
            return
        try:
            stored = self.storage.metadata(removal.key)
            if stored is None or (stored.owner, stored.hash) != (removal.dropped_by, removal.hash):
                return  # a copy let go of it, not its owner
            if not stored.owner_dropped:
                self.storage.update_metadata(
                    removal.key, lambda current: dataclasses.replace(current, owner_dropped=True)
                )
        except StorageUnavailable as error:
            # Downloads still ask that the owner record hold the file: only a copy given
            # back to a record of the owner's id would be served meanwhile.
            logger.warning("Could not note that %s was dropped: %s", removal.key, error)

    def note_given_back(self, key: str, owner: RecordPath) -> None:
        """Kinto wrote ``owner`` with its own private file ``key`` that it did not hold
        (see ``AttachmentGuard.given_back``): its owner let go of it."""
        try:
            with self.locks.hold(file_lock(key)):
                stored = self.storage.metadata(key)
                if stored is not None:
                    self._note_owner_dropped(Removal(key, dropped_by=owner, hash=stored.hash))
        except (StorageUnavailable, AttachmentError) as error:
            logger.warning("Could not note that %s was given back to %s: %s", key, owner, error)

    def _kept_by_setting(self, owner: RecordPath | None) -> bool:
        if self.settings is None:
            return False
        if owner is None:
            return self.settings.default_policy.keep_old_files
        return self.settings.policy_for(owner.bucket_id, owner.collection_id).keep_old_files

    # The request path's two ways in.

    def remove_dropped(
        self,
        attachment: object,
        owner: RecordPath,
        keep: str | None = None,
        planned_at: float | None = None,
    ) -> None:
        """Remove the file of an ``attachment`` that ``owner`` no longer references (Kinto
        has committed), unless it is the file stored under ``keep``."""
        if not isinstance(attachment, dict):
            return
        location = attachment.get("location")
        if not isinstance(location, str):
            return
        key = key_for(self.storage, location)
        if key is None:
            logger.warning("Not removing %r: outside this attachment storage", location)
            return
        if key == keep:
            return
        digest = attachment.get("hash")
        self.remove(
            Removal(
                key,
                dropped_by=owner,
                hash=digest if isinstance(digest, str) else None,
                planned_at=planned_at,
            )
        )

    def remove_all(self) -> None:
        """Kinto's data is gone (flush): every stored file goes, but those
        ``keep_old_files`` protects."""
        for key in self._stored_keys():
            self.remove(Removal(key))

    def _stored_keys(self) -> Iterator[str]:
        try:
            for info in self.storage.scan():
                yield info.key
        except StorageUnavailable as error:
            logger.warning("Could not list the stored files to remove: %s", error)


#: What keeps a file its owner record let go of.
_KEPT_AFTER_ITS_OWNER = frozenset(
    {Verdict.KEPT_BY_SETTING, Verdict.SHARED, Verdict.REFERENCED_AGAIN}
)


def _referenced_since(stored: StoredFileMetadata | None, moment: float) -> bool:
    return stored is not None and stored.referenced_since(moment)
