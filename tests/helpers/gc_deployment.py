"""An in-process deployment for garbage collection: Kinto with the middleware, direct
access to both storages (Kinto's and the files'), and gc run with a listener."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import webtest

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.ops.gc import Listener, collect_garbage
from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import LocalStorage, StoredFileMetadata

from .gcs import opened
from .kinto_apps import ALICE, files_under, fresh_kinto, kinto_settings

HOUR = 3600.0
LATER = 2 * HOUR  # seconds ahead: every file present now is past a one-hour grace


def shared(metadata: StoredFileMetadata) -> StoredFileMetadata:
    """What a copy of the attachment accepted on another record does to its metadata."""
    return dataclasses.replace(metadata, shared=True)


class Deployment:
    """Kinto with the middleware, and direct access to both storages."""

    def __init__(
        self,
        root: Path,
        backend: dict[str, str] | None = None,
        storage_settings: dict[str, str] | None = None,
    ):
        """Files under ``root``, unless ``storage_settings`` (``kinto.attachment.*``)
        name another storage."""
        self.root = root
        settings = {**kinto_settings(root), **(backend or {})}
        if storage_settings:
            del settings["kinto.attachment.base_path"]
            settings.update(storage_settings)
        self.app = webtest.TestApp(AttachmentMiddleware(fresh_kinto(settings), settings))
        self.middleware = self.app.app
        self.kinto_storage = self.middleware.registry.storage
        self.storage = opened(self.middleware.storage)

    def collection(self, bucket: str, collection: str) -> str:
        self.app.put_json(f"/v1/buckets/{bucket}", {}, headers=ALICE, status="2*")
        path = f"/v1/buckets/{bucket}/collections/{collection}"
        self.app.put_json(path, {}, headers=ALICE, status="2*")
        return path

    def upload(self, collection_path: str, record_id: str, content: bytes = b"x") -> dict:
        return self.app.post(
            f"{collection_path}/records/{record_id}/attachment",
            upload_files=[("attachment", f"{record_id}.txt", content)],
            headers=ALICE,
        ).json

    def orphan(self, key: str, content: bytes = b"orphan") -> str:
        """A file stored for a record that was never written (a crash in between)."""
        writer = self.storage.open_writer(key, "text/plain")
        writer.write(content)
        return writer.commit(StoredFileMetadata(RecordPath("b", "c", "gone"), size=6))

    def put_record(self, parent: str, record_id: str, attachment: object) -> None:
        """A record written without the middleware (a restore, a migration)."""
        self.kinto_storage.create(
            "record", parent, {"id": record_id, "title": "t", "attachment": attachment}
        )

    def gc(self, dry_run=False, grace=HOUR, ahead=LATER, page_size=1000):
        found = {"orphans": [], "dangling": [], "leftovers": []}
        listener = Listener(
            orphan=lambda info: found["orphans"].append(info.key),
            dangling=lambda uri, location: found["dangling"].append((uri, location)),
            leftover=lambda info: found["leftovers"].append(info.key),
        )
        report = collect_garbage(
            self.kinto_storage,
            self.storage,
            grace,
            dry_run=dry_run,
            listener=listener,
            page_size=page_size,
            now=time.time() + ahead,
            remover=self.middleware.remover,
        )
        return report, found

    def files(self) -> set[str]:
        if isinstance(self.storage, LocalStorage):
            return files_under(self.root)
        return {info.key for info in self.storage.scan()}

    def key_of(self, meta: dict) -> str:
        key = self.storage.key_for(meta["location"])
        assert key is not None
        return key
