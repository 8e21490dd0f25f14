"""Unfinished uploads, where every worker sees them: ``ID.json`` (what the upload is:
its record, owner, file name, length, fields, expiry) and ``ID.part`` (the bytes so
far) in the spool folder. The offset is the part's size, so that state and bytes never
disagree; a request that changes an upload holds its lock (:meth:`Spool.lock_name`).
What all of them hold is counted in :mod:`.room`, within limits a creation must fit
in; files are opened as :mod:`.folder` says (never through a link)."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from ..protocol.paths import RecordPath
from ..storage import StorageUnavailable
from . import folder
from .protocol import spool_full, too_many_pending, upload_gone
from .room import Room

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{32}$")
#: Expired uploads a creation that would pass the quota looks for (and removes) first.
SWEEP_WHEN_FULL = 200


@dataclass
class UploadState:
    """One unfinished upload, as its ``ID.json`` keeps it."""

    id: str
    record_uri: str
    owner: str
    filename: str
    content_type: str | None
    length: int
    expires_at: float
    fields: dict = field(default_factory=dict)
    #: ``Upload-Metadata`` as the creation sent it (HEAD answers it back).
    metadata: str | None = None
    #: Where the piece that filled the upload began, while the file is not yet stored.
    final_piece_at: int | None = None

    @property
    def record(self) -> RecordPath:
        record = RecordPath.parse(self.record_uri)
        assert record is not None
        return record

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


class Spool:
    def __init__(self, path: str, max_pending: int = 0, quota_bytes: int = 0):
        self.folder = path
        self.max_pending = max_pending
        self.quota_bytes = quota_bytes
        self.room = Room(path)

    def check(self) -> None:
        """At start-up: the folder exists and is this service's own (else a
        ``ConfigurationError``)."""
        folder.check_folder(self.folder)

    def _path(self, upload_id: str, suffix: str) -> str:
        return os.path.join(self.folder, upload_id + suffix)

    def lock_name(self, upload_id: str) -> str:
        return f"resumable:{upload_id}"

    def create(self, state: UploadState) -> None:
        """Keep a new upload, if it fits: 429 past ``max_pending`` of its owner's, 507
        past the quota (expired uploads found on the way are removed)."""
        try:
            folder.make_folder(self.folder)
            with self.room.locked():
                self._make_room(state, time.time())
                self.save(state)  # first: whatever else a crash leaves, expiry finds it
                os.close(folder.open_new(self._path(state.id, ".part")))
                self.room.mark(state.owner, state.id, state.length, state.expires_at)
        except StorageUnavailable:
            self._unlink(state.id)
            raise
        except OSError as error:
            self._unlink(state.id)
            raise StorageUnavailable(f"cannot start a resumable upload: {error}") from error

    def _make_room(self, state: UploadState, now: float) -> None:
        if self.max_pending:
            pending = []
            for upload_id in self.room.marks(state.owner):
                other = self._load_quietly(upload_id)
                if other is not None and other.expires_at > now:
                    pending.append(other)
                elif other is not None:
                    self._unlink(other.id)
                    self.room.unmark(other.owner, other.id)
                else:
                    self.room.unmark(state.owner, upload_id)  # its upload is gone
            if len(pending) >= self.max_pending:
                first_free = min(other.expires_at for other in pending) - now
                raise too_many_pending(len(pending), first_free)
        if self.quota_bytes:
            if self.room.total(now) + state.length > self.quota_bytes:
                for expired in list(self.expired(now, look_at=SWEEP_WHEN_FULL)):
                    self._unlink(expired.id)
                    self.room.unmark(expired.owner, expired.id)
            if self.room.total(now) + state.length > self.quota_bytes:
                raise spool_full(state.length)

    def save(self, state: UploadState) -> None:
        temp = self._path(state.id, f".json.{uuid.uuid4().hex}")
        with os.fdopen(folder.open_new(temp), "w", encoding="utf-8") as out:
            json.dump(asdict(state), out)
        os.replace(temp, self._path(state.id, ".json"))

    def load(self, upload_id: str) -> UploadState | None:
        """The upload, ``None`` when there is none (or the id is not one of ours)."""
        if not _ID.match(upload_id):
            return None
        try:
            fd = folder.open_existing(self._path(upload_id, ".json"), os.O_RDONLY)
            with os.fdopen(fd, encoding="utf-8") as state:
                return UploadState(**json.load(state))
        except FileNotFoundError:
            return None
        except StorageUnavailable:
            raise
        except (OSError, ValueError, TypeError) as error:
            raise StorageUnavailable(f"cannot read upload {upload_id}: {error}") from error

    def _load_quietly(self, upload_id: str) -> UploadState | None:
        try:
            return self.load(upload_id)
        except StorageUnavailable as error:
            logger.warning("Resumable uploads: %s", error)
            return None

    # A part that is gone while its state is still there (a removal cut short, or an
    # expired upload swept while a request used it) leaves nothing to go on with: the
    # upload is gone (404), as it is once its state goes too.

    def offset(self, upload_id: str) -> int:
        with _part_present():
            return folder.file_size(self._path(upload_id, ".part"))

    @contextlib.contextmanager
    def appending(self, upload_id: str) -> Iterator:
        """The part file, opened to add bytes at its end."""
        with _part_present():
            fd = folder.open_existing(self._path(upload_id, ".part"), os.O_WRONLY | os.O_APPEND)
        with os.fdopen(fd, "ab") as part:
            yield part

    def reader(self, upload_id: str):
        with _part_present():
            fd = folder.open_existing(self._path(upload_id, ".part"), os.O_RDONLY)
        return os.fdopen(fd, "rb")

    def remove(self, state: UploadState) -> None:
        """The upload's files, and its place in the counts."""
        self._unlink(state.id)
        with self.room.locked():
            self.room.unmark(state.owner, state.id)

    def _unlink(self, upload_id: str) -> None:
        for suffix in (".part", ".json"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(upload_id, suffix))  # a link itself, never its target

    def expired(
        self, now: float | None = None, look_at: int | None = None
    ) -> Iterator[UploadState]:
        """Uploads past their expiry (gc removes them), streamed; among the first
        ``look_at`` uploads only, when given (a request's share of the cleaning)."""
        now = time.time() if now is None else now
        try:
            entries = os.scandir(self.folder)
        except FileNotFoundError:
            return
        with entries:
            states = (entry for entry in entries if entry.name.endswith(".json"))
            for entry in itertools.islice(states, look_at):
                with contextlib.suppress(StorageUnavailable):
                    state = self.load(entry.name[: -len(".json")])
                    if state is not None and state.expires_at <= now:
                        yield state

    def sweep_expired(self, dry_run: bool = False) -> int:
        """Remove (unless ``dry_run``) every expired upload; how many there were."""
        count = 0
        for state in self.expired():
            count += 1
            if not dry_run:
                self.remove(state)
        return count

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex


@contextlib.contextmanager
def _part_present() -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise upload_gone() from None
