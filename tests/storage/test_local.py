"""The storage interface, as local disk implements it."""

from __future__ import annotations

import json
import os
import time

import pytest

from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import LocalStorage, StorageUnavailable, StoredFileMetadata
from kinto_attachment_mw.storage.local import UnsafePath

from ..helpers.kinto_apps import files_under

pytestmark = pytest.mark.unit


@pytest.fixture
def storage(tmp_path):
    storage = LocalStorage(str(tmp_path / "root"), base_url="https://files.example.com/")
    storage.ensure_root()
    return storage


def store(storage, key: str, content: bytes = b"content") -> str:
    writer = storage.open_writer(key, "text/plain")
    writer.write(content)
    return writer.commit(StoredFileMetadata(RecordPath("b", "c", "r")))


def test_written_file_is_invisible_until_commit(storage):
    writer = storage.open_writer("a/b.txt", "text/plain")
    writer.write(b"half")
    assert not storage.exists("a/b.txt")
    assert all(name.startswith("..upload-") for name in os.listdir(storage.path_of("a")))
    key = writer.commit(StoredFileMetadata(RecordPath("b", "c", "r"), hash="h", size=4))
    assert key == "a/b.txt"
    assert storage.exists(key)
    assert files_under(storage.base_path) == {"a/b.txt"}


def test_abort_leaves_nothing(storage):
    writer = storage.open_writer("a/b.txt", "text/plain")
    writer.write(b"half")
    writer.abort()
    writer.abort()
    assert files_under(storage.base_path) == set()


def test_commit_never_overwrites(storage):
    assert store(storage, "f.txt", b"one") == "f.txt"
    assert store(storage, "f.txt", b"two") == "f-1.txt"
    assert store(storage, "f.txt", b"three") == "f-2.txt"
    with open(storage.path_of("f.txt"), "rb") as stored:
        assert stored.read() == b"one"
    assert files_under(storage.base_path) == {"f.txt", "f-1.txt", "f-2.txt"}


def test_delete_is_idempotent(storage):
    key = store(storage, "x.txt")
    storage.delete(key)
    storage.delete(key)
    assert not storage.exists(key)


def test_url_and_key_round_trip(storage):
    assert storage.url("a/b.txt") == "https://files.example.com/a/b.txt"
    assert storage.key_for("https://files.example.com/a/b.txt") == "a/b.txt"
    assert storage.key_for("https://elsewhere.example.com/a/b.txt") is None


def test_relative_locations_without_base_url(tmp_path):
    storage = LocalStorage(str(tmp_path))
    assert storage.url("a/b.txt") == "a/b.txt"
    assert storage.key_for("a/b.txt") == "a/b.txt"
    assert storage.key_for("https://elsewhere/a") is None


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a\x00b", "", ".", "a//b", "a/./b"],
)
def test_keys_outside_the_root_are_refused(storage, key):
    with pytest.raises(UnsafePath):
        storage.path_of(key)
    assert storage.exists(key) is False


def test_symlink_out_of_the_root_is_refused(storage, tmp_path):
    os.symlink(tmp_path, os.path.join(storage.base_path, "escape"))
    with pytest.raises(UnsafePath):
        storage.path_of("escape/x.txt")


def test_unwritable_root_raises_storage_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    storage = LocalStorage(str(blocker / "root"))
    with pytest.raises(StorageUnavailable):
        storage.ensure_root()
    with pytest.raises(StorageUnavailable):
        storage.open_writer("a.txt", "text/plain")


def test_metadata_is_kept_beside_the_file(storage):
    writer = storage.open_writer("a/b.txt", "text/plain")
    writer.write(b"x")
    key = writer.commit(StoredFileMetadata(RecordPath("b", "c", "r"), size=1))
    assert storage.metadata(key) == StoredFileMetadata(RecordPath("b", "c", "r"), size=1)
    # The sidecar's format, which files stored by earlier versions have too.
    with open(storage.path_of("a/.b.txt.meta"), encoding="utf-8") as sidecar:
        assert json.load(sidecar) == {"record": "/buckets/b/collections/c/records/r", "size": 1}
    storage.delete(key)
    assert storage.metadata(key) is None
    assert files_under(storage.base_path) == set()


def test_file_stored_by_something_else_has_no_metadata(storage):
    os.makedirs(storage.path_of("old").rsplit("/", 1)[0], exist_ok=True)
    with open(storage.path_of("plugin-file.txt"), "wb") as legacy:
        legacy.write(b"from the plugin")
    assert storage.exists("plugin-file.txt")
    assert storage.metadata("plugin-file.txt") is None


def test_emptied_folders_are_pruned_up_to_the_root(storage):
    writer = storage.open_writer("b/c/r1/x.txt", "text/plain")
    writer.write(b"x")
    writer.abort()
    assert os.listdir(storage.base_path) == []
    key = store(storage, "b/c/r2/y.txt")
    store(storage, "b/c/r3/z.txt")
    storage.delete(key)
    assert sorted(os.listdir(storage.path_of("b/c"))) == ["r3"]
    assert os.path.isdir(storage.base_path)


def test_writer_recreates_a_folder_pruned_meanwhile(storage, monkeypatch):
    real_makedirs = os.makedirs
    calls = []

    def makedirs_then_lose_it(path, exist_ok=False):
        real_makedirs(path, exist_ok=exist_ok)
        if not calls:
            os.rmdir(path)  # another request pruned it right after
        calls.append(path)

    monkeypatch.setattr(os, "makedirs", makedirs_then_lose_it)
    writer = storage.open_writer("fresh/x.txt", "text/plain")
    writer.write(b"x")
    assert writer.commit(StoredFileMetadata(None)) == "fresh/x.txt"
    assert len(calls) == 2


def test_concurrent_writes_and_prunes_in_one_folder(storage):
    """Deletes prune folders while other writers make them: no writer may fail."""
    import sys
    import threading

    errors: list[Exception] = []

    def churn(worker: int) -> None:
        for round_ in range(400):
            try:
                key = store(storage, f"shared/deep/{worker}-{round_}.txt")
                storage.delete(key)
            except Exception as error:  # noqa: BLE001 - collected for the assertion
                errors.append(error)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert files_under(storage.base_path) == set()


def test_a_name_held_by_a_file_without_metadata_is_not_taken(storage):
    with open(storage.path_of("legacy.txt"), "wb") as legacy:
        legacy.write(b"stored by the plugin")
    assert store(storage, "legacy.txt", b"new") == "legacy-1.txt"
    with open(storage.path_of("legacy.txt"), "rb") as legacy:
        assert legacy.read() == b"stored by the plugin"


def test_failure_between_metadata_and_file_leaves_nothing(storage, monkeypatch):
    real_link = os.link

    def link_metadata_only(source, target):
        if not target.endswith(".meta"):
            raise OSError(28, "No space left on device")
        real_link(source, target)

    writer = storage.open_writer("a/x.txt", "text/plain")
    writer.write(b"x")
    monkeypatch.setattr(os, "link", link_metadata_only)
    with pytest.raises(StorageUnavailable):
        writer.commit(StoredFileMetadata(RecordPath("b", "c", "r")))
    monkeypatch.undo()
    assert not os.path.exists(storage.base_path + "/a")
    assert files_under(storage.base_path) == set()


def test_sweep_removes_metadata_left_without_its_file(storage):
    kept = store(storage, "d/kept.txt")
    lone = store(storage, "d/lone.txt")
    os.unlink(storage.path_of(lone))
    swept = [info.key for info in storage.sweep_leftovers(time.time() + 1)]
    assert swept == ["d/.lone.txt.meta"]
    assert storage.metadata(kept) is not None
    assert files_under(storage.base_path) == {"d/kept.txt"}


def test_a_sidecar_written_by_the_previous_release_keeps_its_form(storage):
    """Files stored before the metadata had a type carry plain JSON: it is read as it is,
    and noting a reference rewrites it with the same keys."""
    key = store(storage, "old.txt")
    sidecar = os.path.join(os.path.dirname(storage.path_of(key)), ".old.txt.meta")
    planted = {
        "record": "/buckets/b/collections/c/records/r",
        "hash": "ab" * 32,
        "size": 7,
        "referenced_at": 1700000000.5,
    }
    with open(sidecar, "w", encoding="utf-8") as raw:
        json.dump(planted, raw)

    metadata = storage.metadata(key)
    assert metadata == StoredFileMetadata(
        RecordPath("b", "c", "r"), hash="ab" * 32, size=7, referenced_at=1700000000.5
    )
    before = time.time()
    storage.note_reference(key, shared=True)
    with open(sidecar, encoding="utf-8") as raw:
        rewritten = json.load(raw)
    assert rewritten.pop("referenced_at") >= before
    assert rewritten == {
        "record": planted["record"],
        "hash": planted["hash"],
        "size": 7,
        "shared": True,
    }


def test_an_unreadable_folder_fails_the_listing(storage, monkeypatch):
    """A listing that could not read the disk must not pass for "no files": flush and
    gc would act on it."""
    store(storage, "a/one.txt")

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(StorageUnavailable):
        list(storage.scan())
