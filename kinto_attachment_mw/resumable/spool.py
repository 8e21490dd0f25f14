"""Unfinished uploads, where every worker sees them: ``ID.json`` (what the upload is:
its record, owner, file name, length, fields, expiry) and ``ID.part`` (the bytes so
far) in the spool folder. The offset is the part's size, so that state and bytes never
disagree; a request that changes an upload holds its lock (:meth:`Spool.lock_name`)."""

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

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{32}$")


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

    @property
    def record(self) -> RecordPath:
        record = RecordPath.parse(self.record_uri)
        assert record is not None
        return record

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


class Spool:
    def __init__(self, folder: str):
        self.folder = folder

    def _path(self, upload_id: str, suffix: str) -> str:
        return os.path.join(self.folder, upload_id + suffix)

    def lock_name(self, upload_id: str) -> str:
        return f"resumable:{upload_id}"

    def create(self, state: UploadState) -> None:
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            self._save(state)  # first: whatever else a crash leaves, expiry finds it
            with open(self._path(state.id, ".part"), "xb"):
                pass
        except OSError as error:
            self.remove(state.id)
            raise StorageUnavailable(f"cannot start a resumable upload: {error}") from error

    def _save(self, state: UploadState) -> None:
        temp = self._path(state.id, f".json.{uuid.uuid4().hex}")
        with open(temp, "x", encoding="utf-8") as out:
            json.dump(asdict(state), out)
        os.replace(temp, self._path(state.id, ".json"))

    def load(self, upload_id: str) -> UploadState | None:
        """The upload, ``None`` when there is none (or the id is not one of ours)."""
        if not _ID.match(upload_id):
            return None
        try:
            with open(self._path(upload_id, ".json"), encoding="utf-8") as state:
                return UploadState(**json.load(state))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as error:
            raise StorageUnavailable(f"cannot read upload {upload_id}: {error}") from error

    def offset(self, upload_id: str) -> int:
        try:
            return os.stat(self._path(upload_id, ".part")).st_size
        except FileNotFoundError:
            return 0

    @contextlib.contextmanager
    def appending(self, upload_id: str) -> Iterator:
        """The part file, opened to add bytes at its end."""
        with open(self._path(upload_id, ".part"), "ab") as part:
            yield part

    def reader(self, upload_id: str):
        return open(self._path(upload_id, ".part"), "rb")  # noqa: SIM115 (the caller closes)

    def remove(self, upload_id: str) -> None:
        for suffix in (".part", ".json"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(upload_id, suffix))

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
                self.remove(state.id)
        return count

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex
