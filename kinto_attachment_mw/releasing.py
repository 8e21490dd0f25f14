"""Removing the file of an attachment that a record no longer references.

Called only after Kinto confirmed the change (replacement, removal, delete), so a failure
here can leave an orphan for ``gc`` but never a record pointing at a missing file.
"""

from __future__ import annotations

import logging

from .errors import AttachmentError, StorageUnavailable
from .guard import file_lock
from .kinto_api import RecordPath
from .locks import RecordLocks
from .settings import Settings
from .storage import Storage

logger = logging.getLogger(__name__)

#: How far the clocks of the hosts sharing a storage may disagree; a reference noted this
#: long before a removal was planned still counts as newer than the plan.
CLOCK_MARGIN_SECONDS = 600


class FileReleaser:
    def __init__(self, settings: Settings, storage: Storage, locks: RecordLocks):
        self.settings = settings
        self.storage = storage
        self.locks = locks

    def release(
        self,
        attachment: object,
        owner: RecordPath,
        keep: str | None = None,
        planned_at: float | None = None,
    ) -> None:
        """Remove the file ``owner`` referenced, if it is the owner's own and no one else's.

        A location can be copied onto another record (review workflows do) or forged, so a
        file is removed only when what was kept beside it at upload names this record and
        the same hash, and no copy was ever accepted (``shared``); anything else is left to
        garbage collection. A file given to a record again since ``planned_at`` (when the
        caller learnt of the file, before Kinto's change) stays too. ``keep_old_files`` of
        the owner's collection wins. Kinto has committed by now: any failure here is
        logged and leaves the file to gc, never changes the answer.
        """
        if not isinstance(attachment, dict):
            return
        location = attachment.get("location")
        if not isinstance(location, str) or location == keep:
            return
        if self.settings.policy_for(owner.bucket_id, owner.collection_id).keep_old_files:
            return
        key = self.storage.key_for(location)
        if key is None:
            logger.warning("Not removing %r: outside this attachment storage", location)
            return
        try:
            with self.locks.hold(file_lock(key)):  # no copy accepted between check and delete
                stored = self.storage.metadata(key) or {}
                if stored.get("record") != owner.uri or stored.get("hash") != attachment.get(
                    "hash"
                ):
                    logger.info("Not removing %s: not stored for %s", key, owner.uri)
                    return
                if stored.get("shared"):
                    logger.info("Not removing %s: other records reference it too", key)
                    return
                if planned_at is not None and referenced_since(stored, planned_at):
                    logger.info("Not removing %s: given to a record again meanwhile", key)
                    return
                self.storage.delete(key)
        except (StorageUnavailable, AttachmentError) as error:
            logger.warning("Could not remove attachment file %s: %s", key, error)

    def flush(self) -> None:
        """Remove every stored file (Kinto's data is gone), but those ``keep_old_files``
        protects: a file's collection is known from what was kept beside it."""
        for info in self.storage.scan():
            try:
                if not self.kept(info.key):
                    self.storage.delete(info.key)
            except (StorageUnavailable, AttachmentError) as error:
                logger.warning("Could not remove %s on flush: %s", info.key, error)

    def kept(self, key: str) -> bool:
        """Whether ``keep_old_files`` protects a stored file, for the collection it was
        stored for (the global setting for a file without metadata)."""
        owner = _owner_of(self.storage.metadata(key))
        if owner is None:
            return self.settings.default_policy.keep_old_files
        return self.settings.policy_for(owner.bucket_id, owner.collection_id).keep_old_files


def referenced_since(metadata: dict | None, moment: float) -> bool:
    """Whether the file was given to a record after ``moment`` (give or take the clocks)."""
    referenced_at = (metadata or {}).get("referenced_at")
    return isinstance(referenced_at, (int, float)) and (
        referenced_at >= moment - CLOCK_MARGIN_SECONDS
    )


def _owner_of(metadata: dict | None) -> RecordPath | None:
    uri = (metadata or {}).get("record")
    parts = uri.split("/") if isinstance(uri, str) else []
    if len(parts) != 7 or parts[1::2] != ["buckets", "collections", "records"]:
        return None
    return RecordPath(parts[2], parts[4], parts[6])
