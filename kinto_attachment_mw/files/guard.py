"""Tamper protection: a record's ``attachment`` may only ever describe a stored file.

Clients may copy an existing attachment object onto another record (review workflows
copy records between collections), but not invent or alter one. What a write makes of
``attachment`` is worked out by :mod:`..writes.patches`; whether that describes a stored
file is decided here.
"""

from __future__ import annotations

from ..locks import RecordLocks, file_lock
from ..protocol import errors
from ..protocol.paths import RecordPath
from ..storage import Storage
from ..storage.base import is_private_key
from .described_types import check_described_type, type_of_name
from .locations import PrivateLocation, key_of


class AttachmentGuard:
    def __init__(self, storage: Storage, locks: RecordLocks):
        self.storage = storage
        self.locks = locks

    def check(
        self,
        new: object,
        current: object,
        record: RecordPath | None,
        noted: frozenset[str] = frozenset(),
        api_root: str | None = None,
    ) -> str | None:
        """Refuse an ``attachment`` that describes no stored file; accept a copy.

        A private file's location must be the one the middleware gives it, under
        ``api_root`` (how the writer reaches the API): a record writer cannot send readers
        who follow it, with their credentials, to another host.

        Unchanged location, hash and size pass (other fields are descriptive, but for
        ``mimetype``: see :mod:`.described_types`). Before Kinto
        writes the record, the new reference is noted beside the file: a copy of another
        record's file marks it shared, so that its owner's later replacement or delete
        leaves it to garbage collection, and the time of the reference keeps a removal
        planned earlier (by a delete, or by gc) from taking it. The file's lock keeps a
        removal from slipping between the check and the note.

        Returns the key of a file noted as shared. Keys in ``noted`` were noted so a moment
        ago (before the record's lock, see ``KintoWrites.note_copies``): a shared mark is
        never taken back, so they are checked again but not rewritten.
        """
        if new is None:
            return None
        same = _same_file(new, current)
        if isinstance(new, dict):
            unchanged = (
                same
                and isinstance(current, dict)
                and new.get("mimetype") == current.get("mimetype")
            )
            check_described_type(new, unchanged, lambda: self._own_type(new))
        if same:
            return None
        if not isinstance(new, dict):
            raise errors.attachment_tampered()
        key = key_of(self.storage, new)
        if key is None:
            raise errors.attachment_tampered()
        private = PrivateLocation.parse(new.get("location"))
        expected = private.url(api_root or "") if private is not None else None
        if expected is not None and new.get("location") != expected:
            raise errors.attachment_tampered(
                f"A private file's location is the one this server gives it: {expected}"
            )
        with self.locks.hold(file_lock(key)):
            info = self.storage.stat(key)
            if info is None:
                raise errors.attachment_tampered()
            stored = self.storage.metadata(key)
            if stored is None:
                # Stored before this middleware (the plugin kept no metadata): check what
                # is cheap.
                if new.get("size") != info.size:
                    raise errors.attachment_tampered()
                return None
            if stored.hash != new.get("hash") or stored.size != new.get("size"):
                raise errors.attachment_tampered()
            if private is not None and private.owner != stored.owner:
                raise errors.attachment_tampered()  # whose readers may download it
            shared = stored.owner != record
            if not (shared and key in noted):
                self.storage.note_reference(key, shared=shared)
            return key if shared else None

    def _own_type(self, attachment: dict) -> str | None:
        """The type the file ``attachment`` names was stored with (its name's, for a file
        stored before types were kept beside files)."""
        key = key_of(self.storage, attachment)
        if key is None:
            return None
        stored = self.storage.metadata(key)
        if stored is not None and stored.mimetype is not None:
            return stored.mimetype
        return type_of_name(key)

    def given_back(self, new: object, current: object, record: RecordPath | None) -> str | None:
        """The key of the private file ``new`` gives to the record it was uploaded for,
        when that record does not hold it (``current``, with the same content): a record
        created again under the owner's id, or given the file back by a copy. Its owner
        let go of it then, even where no removal could say so (a delete that left its
        files to gc, Kinto's flush with ``keep_old_files``, a removal that failed): once
        Kinto has written the record, the file is marked so (see ``FileRemover``), and
        downloads serve it to no one. ``None`` for anything else."""
        if record is None or new is None or _same_file(new, current):
            return None
        key = key_of(self.storage, new)
        if key is None or not is_private_key(key):
            return None
        stored = self.storage.metadata(key)
        if stored is None or stored.owner != record or stored.owner_dropped:
            return None
        if isinstance(current, dict) and current.get("hash") == stored.hash:
            return None  # the same content moved (made private or public again)
        return key


def _same_file(new: object, current: object) -> bool:
    return (
        isinstance(new, dict)
        and isinstance(current, dict)
        and "location" in new
        and all(new.get(name) == current.get(name) for name in ("location", "hash", "size"))
    )
