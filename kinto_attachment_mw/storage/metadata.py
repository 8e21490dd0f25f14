"""What is kept beside each stored file: who it was stored for, and what it holds.

Every backend writes and reads it (a JSON sidecar on disk, an S3 object's user metadata),
so that deciding who may remove a file, or whether a record describes it, costs no read
of the file itself.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..protocol.paths import RecordPath

#: Fields kept as plain strings in text metadata; any other is JSON (size: int, shared,
#: private and owner_dropped: bool).
_STRING_FIELDS = frozenset({"record", "hash", "mimetype"})

#: How far the clocks of the hosts sharing a storage may disagree; a reference noted this
#: long before a removal was planned still counts as newer than the plan.
CLOCK_MARGIN_SECONDS = 600


@dataclass(frozen=True)
class StoredFileMetadata:
    #: The record the file was uploaded for; ``None`` for a file of no record.
    owner: RecordPath | None
    #: SHA-256 (hex) and size in bytes of the stored bytes.
    hash: str | None = None
    size: int | None = None
    #: A copy of the attachment was accepted on another record: its owner no longer
    #: decides alone when the file goes.
    shared: bool = False
    #: When a record was last given this file (seconds since the epoch).
    referenced_at: float | None = None
    #: Served only to those who may read its owner record: no public ACL, not served
    #: by ``serve_path`` (``kinto.attachment.private``).
    private: bool = False
    #: The record it was stored for let go of it (deleted, or given another file) while
    #: copies kept it: a private file is then served to no one, so that a record created
    #: again under that id, or given the file back by a copy, cannot read it.
    owner_dropped: bool = False
    #: The type the file was stored with (normalized): what a record may describe it
    #: as, even when browsers render that type. ``None`` for files stored before.
    mimetype: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The stored form; its keys are those files already stored carry."""
        stored: dict[str, object] = {"record": self.owner.uri if self.owner else None}
        if self.hash is not None:
            stored["hash"] = self.hash
        if self.size is not None:
            stored["size"] = self.size
        if self.shared:
            stored["shared"] = True
        if self.referenced_at is not None:
            stored["referenced_at"] = self.referenced_at
        if self.private:
            stored["private"] = True
        if self.owner_dropped:
            stored["owner_dropped"] = True
        if self.mimetype is not None:
            stored["mimetype"] = self.mimetype
        return stored

    @classmethod
    def from_dict(cls, stored: object) -> StoredFileMetadata | None:
        """What :meth:`to_dict` wrote; ``None`` when it is not such a mapping. A value of
        the wrong type reads as missing: it is never trusted."""
        if not isinstance(stored, Mapping):
            return None
        hash_, size, referenced_at, mimetype = (
            stored.get(name) for name in ("hash", "size", "referenced_at", "mimetype")
        )
        return cls(
            owner=RecordPath.parse(stored.get("record")),
            hash=hash_ if isinstance(hash_, str) else None,
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            shared=stored.get("shared") is True,
            private=stored.get("private") is True,
            owner_dropped=stored.get("owner_dropped") is True,
            mimetype=mimetype if isinstance(mimetype, str) else None,
            referenced_at=(
                float(referenced_at)
                if isinstance(referenced_at, (int, float)) and not isinstance(referenced_at, bool)
                else None
            ),
        )

    def to_text(self) -> dict[str, str]:
        """The stored form as ASCII text (an object's user metadata on S3 and GCS travels
        as HTTP headers): strings as they are, anything else as JSON."""
        encoded = {}
        for name, value in self.to_dict().items():
            if value is None:
                continue
            if name in _STRING_FIELDS and isinstance(value, str) and value.isascii():
                encoded[name] = value
            else:
                encoded[name] = json.dumps(value)
        return encoded

    @classmethod
    def from_text(cls, encoded: Mapping[str, str] | None) -> StoredFileMetadata | None:
        """What :meth:`to_text` wrote; ``None`` for an object stored by anything else."""
        if not encoded or ("record" not in encoded and "hash" not in encoded):
            return None
        decoded: dict[str, object] = {}
        for name, value in encoded.items():
            if not value:
                continue  # a removed key, as some servers keep them (empty)
            if name in _STRING_FIELDS:
                decoded[name] = value
                continue
            try:
                decoded[name] = json.loads(value)
            except (ValueError, RecursionError):  # never trusted: read as a string
                decoded[name] = value
        return cls.from_dict(decoded)

    def referenced_since(self, moment: float) -> bool:
        """Whether a record was given the file after ``moment`` (give or take the clocks)."""
        return self.referenced_at is not None and (
            self.referenced_at >= moment - CLOCK_MARGIN_SECONDS
        )

    def referenced(self, moment: float, shared: bool) -> StoredFileMetadata:
        """The metadata once a record was given the file at ``moment``; once shared, a
        file stays shared."""
        return dataclasses.replace(self, referenced_at=moment, shared=self.shared or shared)
