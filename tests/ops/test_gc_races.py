"""Garbage collection racing clients: a scan is not a snapshot, so records changed while
it runs, and copies accepted while it removes, must keep their files. On Kinto's memory
backend and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from kinto_attachment_mw.ops.gc import collect_garbage

from ..helpers.gc_deployment import HOUR, LATER, Deployment
from ..helpers.kinto_apps import ALICE
from ..helpers.postgres import kinto_postgresql_settings


@pytest.fixture
def deployment(storage_root: Path) -> Deployment:
    return Deployment(storage_root)


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


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("postgresql", marks=pytest.mark.integration),
    ]
)
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


@pytest.mark.unit
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
