"""Garbage collection in-process, on Kinto's memory backend: what it finds and removes."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import kinto
import pytest
import webtest

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.ops.gc import Listener, collect_garbage
from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import StoredFileMetadata
from kinto_attachment_mw.storage.local import LocalStorage

from ..helpers.kinto_apps import ALICE, files_under, kinto_settings
from ..helpers.postgres import kinto_postgresql_settings

HOUR = 3600.0
LATER = 2 * HOUR  # seconds ahead: every file present now is past a one-hour grace


def shared(metadata: StoredFileMetadata) -> StoredFileMetadata:
    """What a copy of the attachment accepted on another record does to its metadata."""
    return dataclasses.replace(metadata, shared=True)


class Deployment:
    """Kinto with the middleware, and direct access to both storages."""

    def __init__(self, root: Path, backend: dict[str, str] | None = None):
        self.root = root
        settings = {**kinto_settings(root), **(backend or {})}
        self.app = webtest.TestApp(AttachmentMiddleware(kinto.main({}, **settings), settings))
        self.middleware = self.app.app
        self.kinto_storage = self.middleware.registry.storage
        self.storage = self.middleware.storage

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
        return files_under(self.root)

    def key_of(self, meta: dict) -> str:
        key = self.storage.key_for(meta["location"])
        assert key is not None
        return key


@pytest.fixture
def deployment(storage_root: Path) -> Deployment:
    return Deployment(storage_root)


def test_orphans_removed_referenced_kept_across_buckets_and_pages(deployment):
    """Every record of every bucket and collection is read, a small page at a time."""
    referenced = set()
    for bucket in ("b1", "b2"):
        for collection in ("c1", "c2", "c3"):
            path = deployment.collection(bucket, collection)
            for number in range(5):
                meta = deployment.upload(path, f"r{number}")
                referenced.add(deployment.key_of(meta))
            deployment.app.put_json(f"{path}/records/plain", {"data": {"x": 1}}, headers=ALICE)
    orphans = {deployment.orphan("crashed.txt"), deployment.orphan("deep/er/crashed.bin")}
    # A file orphaned behind the middleware's back: its record deleted in Kinto's storage.
    path = deployment.collection("b1", "c1")
    dropped = deployment.upload(path, "dropped")
    deployment.kinto_storage.delete("record", "/buckets/b1/collections/c1", "dropped")
    orphans.add(deployment.key_of(dropped))
    assert deployment.files() == referenced | orphans

    report, found = deployment.gc(page_size=2)

    assert report.records == 30
    assert report.files == 33
    assert sorted(found["orphans"]) == sorted(orphans)
    assert (report.orphans, report.removed) == (3, 3)
    assert report.orphan_bytes == report.removed_bytes == 6 + 6 + 1
    assert report.dangling == 0
    assert deployment.files() == referenced
    again, _ = deployment.gc(page_size=2)
    assert (again.orphans, again.records, again.files) == (0, 30, 30)


def test_grace_period_protects_recent_files(deployment):
    """A file just stored may belong to an upload whose record is being written."""
    recent = deployment.orphan("in-flight.txt")

    report, found = deployment.gc(ahead=0)
    assert (report.orphans, found["orphans"]) == (0, [])
    assert recent in deployment.files()

    report, found = deployment.gc(ahead=0, grace=0)
    assert found["orphans"] == [recent]
    assert deployment.files() == set()


def test_grace_period_uses_file_age(deployment):
    old = deployment.orphan("old.txt")
    young = deployment.orphan("young.txt")
    past = time.time() - 3 * HOUR
    os.utime(deployment.storage.path_of(old), (past, past))

    report, found = deployment.gc(ahead=0)

    assert found["orphans"] == [old]
    assert deployment.files() == {young}


def test_dry_run_removes_nothing(deployment):
    path = deployment.collection("b", "c")
    kept = deployment.key_of(deployment.upload(path, "r1"))
    orphan = deployment.orphan("lost.txt")
    leftover = deployment.root / ".upload-0123456789abcdef"
    leftover.write_bytes(b"partial")
    before = deployment.files()

    report, found = deployment.gc(dry_run=True)

    assert found["orphans"] == [orphan]
    assert found["leftovers"] == [".upload-0123456789abcdef"]
    assert (report.orphans, report.removed, report.leftovers) == (1, 0, 1)
    assert deployment.files() == before == {kept, orphan, leftover.name}


def test_dangling_records_are_listed(deployment):
    """A record whose file vanished is reported (gc cannot bring the file back)."""
    path = deployment.collection("b", "c")
    lost = deployment.upload(path, "lost")
    kept = deployment.upload(path, "kept")
    deployment.storage.delete(deployment.key_of(lost))

    report, found = deployment.gc()

    assert found["dangling"] == [("/buckets/b/collections/c/records/lost", lost["location"])]
    assert report.dangling == 1
    assert deployment.files() == {deployment.key_of(kept)}


def test_leftovers_of_unfinished_uploads_are_swept(deployment):
    """Temporary files and a metadata sidecar whose file never arrived."""
    path = deployment.collection("b", "c")
    kept = deployment.key_of(deployment.upload(path, "r1"))
    folder = deployment.root / "sub"
    folder.mkdir()
    (folder / ".upload-feedface").write_bytes(b"half a file")
    (folder / ".never.txt.meta").write_text("{}")

    report, found = deployment.gc()

    assert sorted(found["leftovers"]) == ["sub/.never.txt.meta", "sub/.upload-feedface"]
    assert report.leftover_bytes == len(b"half a file") + 2
    assert deployment.files() == {kept}
    assert not folder.exists()


def test_locations_outside_this_storage_are_neither_orphans_nor_dangling(deployment):
    path = deployment.collection("b", "c")
    parent = "/buckets/b/collections/c"
    deployment.put_record(parent, "elsewhere", {"location": "https://cdn.example/x.txt"})
    deployment.put_record(parent, "absolute", {"location": "/etc/passwd"})
    deployment.put_record(parent, "nulled", None)
    deployment.put_record(parent, "weird", {"location": 42})
    kept = deployment.key_of(deployment.upload(path, "r1"))

    report, found = deployment.gc()

    assert report.records == 4  # null is no attachment
    assert report.outside == 3
    assert (report.dangling, report.orphans) == (0, 0)
    assert deployment.files() == {kept}


def test_a_file_referenced_by_a_copied_record_is_kept(deployment):
    """Review workflows copy a record with its attachment to another collection."""
    path = deployment.collection("b", "c")
    meta = deployment.upload(path, "r1")
    deployment.collection("b", "preview")
    deployment.put_record("/buckets/b/collections/preview", "r1", meta)
    deployment.storage.update_metadata(deployment.key_of(meta), shared)
    deployment.app.put_json(f"{path}/records/r1", {"data": {"x": 1}}, headers=ALICE)

    report, _ = deployment.gc()

    assert report.orphans == 0
    assert deployment.files() == {deployment.key_of(meta)}


def test_a_shared_file_no_record_references_is_removed(deployment):
    orphan = deployment.orphan("was-shared.txt")
    deployment.storage.update_metadata(orphan, shared)

    report, found = deployment.gc()

    assert found["orphans"] == [orphan]
    assert deployment.files() == set()


def test_tombstones_do_not_reference_files(deployment):
    path = deployment.collection("b", "c")
    meta = deployment.upload(path, "r1")
    key = deployment.key_of(meta)
    deployment.kinto_storage.delete("record", "/buckets/b/collections/c", "r1")
    assert key in deployment.files()

    report, found = deployment.gc()

    assert found["orphans"] == [key]
    assert report.records == 0


class CopiedDuringListing:
    """Kinto's storage, real; just before gc lists the last collection's records, a
    client copies an attachment onto a record gc has already read, and the record about
    to be read drops it."""

    def __init__(self, deployment: Deployment, attachment: dict):
        self.deployment, self.attachment = deployment, attachment
        self.copied = False

    def __getattr__(self, name):
        return getattr(self.deployment.kinto_storage, name)

    def list_all(self, resource_name, parent_id, **kwargs):
        if parent_id == "/buckets/z/collections/c" and not self.copied:
            self.copied = True
            app = self.deployment.app
            copy = {"data": {"attachment": self.attachment}}
            app.put_json("/v1/buckets/a/collections/c/records/copy", copy, headers=ALICE)
            app.put_json("/v1/buckets/z/collections/c/records/owner", {"data": {}}, headers=ALICE)
        return self.deployment.kinto_storage.list_all(resource_name, parent_id, **kwargs)


@pytest.fixture(params=["memory", pytest.param("postgresql", marks=pytest.mark.integration)])
def backend(request) -> dict[str, str]:
    if request.param == "memory":
        return {}
    return kinto_postgresql_settings(request.getfixturevalue("postgres_url"))


def test_a_file_referenced_while_gc_runs_is_kept(storage_root, backend):
    """gc checks its orphans against the records once more before removing them."""
    deployment = Deployment(storage_root, backend)
    deployment.collection("a", "c")
    path = deployment.collection("z", "c")
    meta = deployment.upload(path, "owner")
    orphan = deployment.orphan("really-orphan.txt")
    racing = CopiedDuringListing(deployment, meta)

    report = collect_garbage(racing, deployment.storage, HOUR, page_size=2, now=time.time() + LATER)

    assert racing.copied
    assert (
        deployment.app.get("/v1/buckets/a/collections/c/records/copy", headers=ALICE).json["data"][
            "attachment"
        ]
        == meta
    )
    assert (report.orphans, report.removed) == (1, 1)
    assert deployment.files() == {deployment.key_of(meta)}
    assert orphan not in deployment.files()


def test_keep_old_files_protects_unreferenced_files(storage_root):
    deployment = Deployment(storage_root, {"kinto.attachment.resources.b.c.keep_old_files": "true"})
    kept = deployment.orphan("kept.txt")  # stored for a record of b/c
    report, found = deployment.gc()
    assert (report.orphans, report.kept, report.removed) == (0, 1, 0)
    assert found["orphans"] == []
    assert deployment.files() == {kept}


class WritesDuringListing:
    """Kinto's storage, real; just before gc lists the records of ``/buckets/z/...``,
    ``write()`` runs once (a client's requests racing the scan)."""

    def __init__(self, deployment: Deployment, write):
        self.deployment, self.write = deployment, write

    def __getattr__(self, name):
        return getattr(self.deployment.kinto_storage, name)

    def list_all(self, resource_name, parent_id, **kwargs):
        if parent_id == "/buckets/z/collections/c" and self.write:
            write, self.write = self.write, None
            write(self.deployment.app)
        return self.deployment.kinto_storage.list_all(resource_name, parent_id, **kwargs)


OLD = 1_000_000  # a client-set last_modified from 1970: imports and replication keep them


def copy_with_an_old_timestamp(meta):
    def write(app):
        copy = {"data": {"attachment": meta, "last_modified": OLD}}
        app.put_json("/v1/buckets/a/collections/c/records/copy", copy, headers=ALICE)
        app.put_json("/v1/buckets/z/collections/c/records/owner", {"data": {}}, headers=ALICE)

    return write, "/v1/buckets/a/collections/c/records/copy"


def import_into_a_new_collection(meta):
    def write(app):
        app.put_json("/v1/buckets/a/collections/new", {}, headers=ALICE)
        imported = {"data": {"attachment": meta, "last_modified": OLD}}
        app.put_json("/v1/buckets/a/collections/new/records/owner", imported, headers=ALICE)
        app.delete("/v1/buckets/z/collections/c", headers=ALICE)

    return write, "/v1/buckets/a/collections/new/records/owner"


@pytest.mark.parametrize("race", [copy_with_an_old_timestamp, import_into_a_new_collection])
def test_a_file_given_to_a_record_with_an_old_timestamp_during_gc_is_kept(
    storage_root, backend, race
):
    """Timestamps cannot tell what changed during the scan; the file's own metadata does."""
    deployment = Deployment(storage_root, backend)
    deployment.collection("a", "c")
    meta = deployment.upload(deployment.collection("z", "c"), "owner")
    write, copy_path = race(meta)
    racing = WritesDuringListing(deployment, write)

    report = collect_garbage(
        racing,
        deployment.storage,
        HOUR,
        page_size=2,
        now=time.time() + LATER,
        remover=deployment.middleware.remover,
    )

    assert racing.write is None
    assert deployment.app.get(copy_path, headers=ALICE).json["data"]["attachment"] == meta
    assert deployment.key_of(meta) in deployment.files()
    assert report.removed == 0


def test_files_under_a_former_base_url_are_kept(storage_root):
    """Records keep the locations of a former ``base_url`` (http before https, another
    CDN host): gc must not take their files for orphans."""
    old = Deployment(storage_root, {"kinto.attachment.base_url": "http://cdn.example/files/"})
    meta = old.upload(old.collection("b", "c"), "r1")
    orphan = old.orphan("really-orphan.txt")
    moved = LocalStorage(str(storage_root), "https://cdn.example/files/")

    report = collect_garbage(old.kinto_storage, moved, HOUR, now=time.time() + LATER)

    assert (report.outside, report.removed, report.dangling) == (1, 1, 0)
    assert old.files() == {moved.key_for("https://cdn.example/files/" + meta["location"][25:])}
    assert orphan not in old.files()


def test_a_copy_accepted_while_gc_removes_keeps_its_file(deployment):
    """A client holding an old attachment object copies it onto a record just as gc is
    about to remove the unreferenced file: the copy notes itself beside the file, under
    the file's lock, and gc reads that note under the same lock."""
    path = deployment.collection("b", "c")
    meta = deployment.upload(path, "owner")
    app = deployment.app
    app.put_json(f"{path}/records/copy1", {"data": {"attachment": meta}}, headers=ALICE)
    app.delete(f"{path}/records/copy1", headers=ALICE)
    app.put_json(f"{path}/records/owner", {"data": {}}, headers=ALICE)
    key = deployment.key_of(meta)
    # Shared long ago, no record left: an orphan, until the late copy below.
    long_ago = time.time() - 2 * LATER
    deployment.storage.update_metadata(
        key, lambda m: dataclasses.replace(m, referenced_at=long_ago)
    )
    metadata_reads = deployment.storage.metadata

    def metadata(read_key):
        if read_key == key and not late:
            late.append("copying")  # once: the copy reads the metadata too
            late.append(
                app.put_json(f"{path}/records/late", {"data": {"attachment": meta}}, headers=ALICE)
            )
        return metadata_reads(read_key)

    late: list = []
    deployment.storage.metadata = metadata
    report, found = deployment.gc()

    assert late[1].status_int == 201
    assert found["orphans"] == []
    assert key in deployment.files()
    assert report.removed == 0
