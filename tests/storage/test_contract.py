"""What every storage backend promises, run against each of them.

A backend joins by adding a param to the ``backend`` fixture; the ``plant_*`` helpers
create, through the backend's own means, what a crashed upload or another program
leaves behind.
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import LocalStorage, StoredFileMetadata
from kinto_attachment_mw.storage.local import TEMP_PREFIX

from ..helpers.gcs import gcs_storage
from ..helpers.kinto_apps import TEST_PART_SIZE, s3_storage

OWNER = RecordPath("b", "c", "r")


class LocalBackend:
    def __init__(self, tmp_path):
        self.storage = LocalStorage(str(tmp_path / "root"), base_url="https://files.example.com/")
        self.storage.ensure_root()

    def public(self, key: str) -> bool | None:
        """Local files have no ACL: private ones are under the private folder."""
        return None

    def read(self, key: str) -> bytes:
        with open(self.storage.path_of(key), "rb") as stored:
            return stored.read()

    def plant_foreign_file(self, key: str, content: bytes) -> None:
        """A file without metadata, as the older plugin stored them."""
        path = self.storage.path_of(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as foreign:
            foreign.write(content)

    def plant_leftover(self, folder: str, age: float) -> None:
        """The temporary file of an upload whose process died."""
        path = os.path.join(self.storage.base_path, folder, TEMP_PREFIX + "dead")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as temp:
            temp.write(b"partial")
        past = time.time() - age
        os.utime(path, (past, past))


class S3Backend:
    def __init__(self, moto):
        self.client = moto.client
        self.bucket = moto.new_bucket()
        self.storage = s3_storage(
            self.bucket, moto.url, "https://files.example.com/", acl="public-read"
        )

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def public(self, key: str) -> bool:
        grants = self.client.get_object_acl(Bucket=self.bucket, Key=key)["Grants"]
        return any(g["Grantee"].get("URI", "").endswith("/global/AllUsers") for g in grants)

    def plant_foreign_file(self, key: str, content: bytes) -> None:
        """An object without our metadata, as the older plugin stored them."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=content)

    def plant_leftover(self, folder: str, age: float) -> None:
        """A multipart upload with a part sent, never completed nor aborted.

        S3 stamps its start time itself, so ``age`` cannot be honoured: the tests call it
        old by sweeping with an ``older_than`` in the future.
        """
        key = f"{folder}/dead.bin"
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
        )


class GCSBackend:
    def __init__(self, fake_gcs):
        self.client = fake_gcs.client
        self.bucket = fake_gcs.new_bucket()
        self.storage = gcs_storage(self.bucket, fake_gcs.url, "https://files.example.com/")

    def read(self, key: str) -> bytes:
        return self.client.bucket(self.bucket).blob(key).download_as_bytes()

    def public(self, key: str) -> bool:
        blob = self.client.bucket(self.bucket).blob(key)
        blob.acl.reload()
        return "allUsers" in {entry["entity"] for entry in blob.acl}

    def plant_foreign_file(self, key: str, content: bytes) -> None:
        """An object without our metadata, as the plugin stores them."""
        self.client.bucket(self.bucket).blob(key).upload_from_string(content)

    def plant_leftover(self, folder: str, age: float) -> None:
        """A heartbeat probe whose delete failed (GCS lists no unfinished upload).

        GCS stamps the object itself, so ``age`` is not honoured (see S3Backend)."""
        self.plant_foreign_file(f"{folder}/.heartbeat-dead.txt", b"probe")


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.unit),
        pytest.param("s3", marks=pytest.mark.integration),
        pytest.param("gcs", marks=pytest.mark.integration),
    ]
)
def backend(request, tmp_path):
    if request.param == "s3":
        return S3Backend(request.getfixturevalue("moto"))
    if request.param == "gcs":
        return GCSBackend(request.getfixturevalue("fake_gcs"))
    return LocalBackend(tmp_path)


def store(storage, key: str, content: bytes = b"content", **metadata) -> str:
    writer = storage.open_writer(key, "text/plain", private=metadata.get("private", False))
    writer.write(content)
    return writer.commit(StoredFileMetadata(OWNER, size=len(content), **metadata))


def test_stat_gives_size_and_age(backend):
    storage = backend.storage
    before = time.time() - 5
    key = store(storage, "a/b.txt", b"12345")
    info = storage.stat(key)
    assert (info.key, info.size) == (key, 5)
    assert before <= info.modified <= time.time() + 5
    assert storage.stat("a/missing.txt") is None


def test_scan_lists_files_only(backend):
    storage = backend.storage
    keys = {store(storage, "a/one.txt", b"1"), store(storage, "a/b/two.txt", b"22")}
    backend.plant_foreign_file("legacy/three.txt", b"333")
    backend.plant_leftover("a", age=0)
    listed = {info.key: info.size for info in storage.scan()}
    assert listed == {"a/one.txt": 1, "a/b/two.txt": 2, "legacy/three.txt": 3}
    assert keys <= set(listed)


def test_note_reference_keeps_the_other_metadata(backend):
    storage = backend.storage
    key = store(storage, "s.txt", b"x", hash="h")
    before = time.time()
    storage.note_reference(key, shared=False)
    metadata = storage.metadata(key)
    assert not metadata.shared
    assert before <= metadata.referenced_at <= time.time()
    assert (metadata.owner, metadata.size, metadata.hash) == (OWNER, 1, "h")
    storage.note_reference(key, shared=True)
    storage.note_reference(key, shared=False)  # once shared, always shared
    metadata = storage.metadata(key)
    assert metadata.shared is True
    assert before <= metadata.referenced_at <= time.time()
    assert [info.key for info in storage.scan()] == [key]


def test_a_private_file_stays_private(backend):
    storage = backend.storage
    key = store(storage, "p.txt", b"x", hash="h", private=True)
    storage.note_reference(key, shared=True)  # S3 copies the object onto itself
    assert storage.metadata(key).private is True
    assert backend.public(key) in (False, None)
    plain = store(storage, "q.txt", b"y")
    assert storage.metadata(plain).private is False
    assert backend.public(plain) in (True, None)


@pytest.mark.parametrize("private", [True, False])
def test_copy_stores_another_file_with_new_metadata(backend, private):
    storage = backend.storage
    content = os.urandom(3000)
    key = store(storage, "a/c.bin", content, hash="h", private=not private)
    taken = store(storage, "b/c.bin", b"taken")
    wanted = StoredFileMetadata(RecordPath("b", "c", "other"), hash="h", size=3000, private=private)
    copied = storage.copy(key, "b/c.bin", wanted)
    assert copied == "b/c-1.bin"  # never over another file
    assert storage.metadata(copied) == wanted
    assert storage.stat(copied).size == 3000
    assert backend.public(copied) in (not private, None)
    assert storage.metadata(key).private is not private  # the source is unchanged
    assert storage.stat(taken).size == 5
    assert {info.key for info in storage.scan()} == {key, taken, copied}
    assert backend.read(copied) == content


def test_metadata_updates_of_a_file_without_metadata_do_nothing(backend):
    storage = backend.storage
    backend.plant_foreign_file("old.txt", b"old")
    storage.note_reference("old.txt", shared=True)
    assert storage.metadata("old.txt") is None
    storage.update_metadata("missing.txt", lambda m: dataclasses.replace(m, shared=True))
    assert storage.stat("missing.txt") is None


def test_sweep_removes_old_leftovers_only(backend):
    storage = backend.storage
    key = store(storage, "f/kept.txt")
    backend.plant_leftover("f", age=3600)
    backend.plant_leftover("g", age=3600)
    # S3 cannot backdate an upload's start (and moto stamps them all alike), so the
    # cut-off is placed around the start times the storage itself reports.
    soon = time.time() + 60
    found = list(storage.sweep_leftovers(soon, dry_run=True))
    assert len(found) == 2
    started = min(info.modified for info in found)
    assert list(storage.sweep_leftovers(started)) == []
    assert len(list(storage.sweep_leftovers(soon))) == 2
    assert list(storage.sweep_leftovers(soon)) == []
    assert [info.key for info in storage.scan()] == [key]
    assert storage.metadata(key).owner == OWNER


@pytest.mark.parametrize(
    "name",
    [
        "upload-report.txt",
        "upload-.txt",
        "upload-0123456789abcdef0123456789abcdef",
        "upload-0123456789abcdef0123456789abcdef.meta",
        "report.meta",
        "meta",
        "x.meta.meta",
        "upload",
    ],
)
def test_the_sweep_never_takes_a_stored_files_own_metadata(backend, name):
    """Whatever a stored file is named, what the storage keeps beside it is not a
    leftover: the file keeps its owner, hash and size after a sweep."""
    storage = backend.storage
    key = store(storage, f"d/{name}")
    assert key == f"d/{name}"
    assert list(storage.sweep_leftovers(time.time() + 3600)) == []
    assert storage.metadata(key).owner == OWNER
    assert [info.key for info in storage.scan()] == [key]


def test_commit_never_overwrites(backend):
    storage = backend.storage
    backend.plant_foreign_file("d/same.txt", b"foreign")
    first = store(storage, "d/same.txt", b"one")
    second = store(storage, "d/same.txt", b"two")
    assert (first, second) == ("d/same-1.txt", "d/same-2.txt")
    assert storage.metadata("d/same.txt") is None
    assert storage.stat("d/same.txt").size == len(b"foreign")
    assert storage.stat(second).size == 3


def test_abort_leaves_nothing_behind(backend):
    """Even past the size where S3 switches to a multipart upload (GCS to a resumable
    one)."""
    storage = backend.storage
    writer = storage.open_writer("big/file.bin", "application/octet-stream")
    for _ in range(3):
        writer.write(b"x" * (TEST_PART_SIZE // 2 + 1))
    writer.abort()
    writer.abort()
    assert list(storage.scan()) == []
    assert list(storage.sweep_leftovers(time.time() + 60, dry_run=True)) == []


def test_delete_and_exists(backend):
    storage = backend.storage
    key = store(storage, "x/y.txt")
    assert storage.exists(key)
    storage.delete(key)
    storage.delete(key)
    assert not storage.exists(key)
    assert storage.metadata(key) is None
    assert list(storage.scan()) == []
