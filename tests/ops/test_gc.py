"""Garbage collection in-process, on Kinto's memory backend: what it finds and removes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kinto_attachment_mw.ops.gc import collect_garbage
from kinto_attachment_mw.storage.local import LocalStorage

from ..helpers.gc_deployment import HOUR, LATER, Deployment, shared
from ..helpers.gcs import gcs_attachment_settings
from ..helpers.kinto_apps import ALICE


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.unit),
        pytest.param("gcs", marks=pytest.mark.integration),
    ]
)
def deployment(request, storage_root: Path) -> Deployment:
    """On local storage, then on GCS."""
    if request.param == "gcs":
        fake_gcs = request.getfixturevalue("fake_gcs")
        settings = gcs_attachment_settings(fake_gcs.new_bucket(), fake_gcs.url)
        return Deployment(storage_root, storage_settings=settings)
    return Deployment(storage_root)


#: For what only local storage can show: a file's age set by hand, temporary files.
local_only = pytest.mark.parametrize(
    "deployment", [pytest.param("local", marks=pytest.mark.unit)], indirect=True
)


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


@local_only
def test_grace_period_uses_file_age(deployment):
    old = deployment.orphan("old.txt")
    young = deployment.orphan("young.txt")
    past = time.time() - 3 * HOUR
    os.utime(deployment.storage.path_of(old), (past, past))

    report, found = deployment.gc(ahead=0)

    assert found["orphans"] == [old]
    assert deployment.files() == {young}


@local_only
def test_dry_run_removes_nothing(deployment):
    path = deployment.collection("b", "c")
    kept = deployment.key_of(deployment.upload(path, "r1"))
    orphan = deployment.orphan("lost.txt")
    leftover = deployment.root / "..upload-0123456789abcdef"
    leftover.write_bytes(b"partial")
    before = deployment.files()

    report, found = deployment.gc(dry_run=True)

    assert found["orphans"] == [orphan]
    assert found["leftovers"] == ["..upload-0123456789abcdef"]
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


@local_only
def test_leftovers_of_unfinished_uploads_are_swept(deployment):
    """Temporary files and a metadata sidecar whose file never arrived."""
    path = deployment.collection("b", "c")
    kept = deployment.key_of(deployment.upload(path, "r1"))
    folder = deployment.root / "sub"
    folder.mkdir()
    (folder / "..upload-feedface").write_bytes(b"half a file")
    (folder / ".never.txt.meta").write_text("{}")

    report, found = deployment.gc()

    assert sorted(found["leftovers"]) == ["sub/..upload-feedface", "sub/.never.txt.meta"]
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


@pytest.mark.unit
def test_keep_old_files_protects_unreferenced_files(storage_root):
    deployment = Deployment(storage_root, {"kinto.attachment.resources.b.c.keep_old_files": "true"})
    kept = deployment.orphan("kept.txt")  # stored for a record of b/c
    report, found = deployment.gc()
    assert (report.orphans, report.kept, report.removed) == (0, 1, 0)
    assert found["orphans"] == []
    assert deployment.files() == {kept}


@pytest.mark.unit
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
