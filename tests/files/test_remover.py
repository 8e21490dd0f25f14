"""The one deletion rule: every removal (request path, flush, gc) goes through
``FileRemover.remove``, which decides under the file's lock."""

from __future__ import annotations

import os
import threading
import time

import pytest

from kinto_attachment_mw.config import parse_settings
from kinto_attachment_mw.files.remover import FileRemover, Removal, Verdict
from kinto_attachment_mw.locks import ProcessLocks, file_lock
from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import LocalStorage, StorageUnavailable, StoredFileMetadata

pytestmark = pytest.mark.unit

OWNER = RecordPath("b", "c", "r1")
OTHER = RecordPath("b", "c", "r2")
KEPT_COLLECTION = RecordPath("b", "archive", "r1")


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    storage = LocalStorage(str(tmp_path / "files"))
    storage.ensure_root()
    return storage


def remover_for(storage: LocalStorage, lock_timeout: float = 5, **settings: str) -> FileRemover:
    raw = {"kinto.attachment.base_path": storage.base_path}
    raw.update({f"kinto.attachment.{name}": value for name, value in settings.items()})
    return FileRemover(storage, ProcessLocks(lock_timeout), parse_settings(raw))


@pytest.fixture
def remover(storage) -> FileRemover:
    return remover_for(storage, **{"resources.b.archive.keep_old_files": "true"})


def store(storage: LocalStorage, key: str, metadata: StoredFileMetadata | None) -> str:
    """A stored file; ``None`` metadata plants one as the older plugin left them."""
    if metadata is None:
        path = storage.path_of(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as planted:
            planted.write(b"plugin-era")
        return key
    writer = storage.open_writer(key, "text/plain")
    writer.write(b"content")
    return writer.commit(metadata)


def owned(owner: RecordPath = OWNER, **fields) -> StoredFileMetadata:
    return StoredFileMetadata(owner, hash="h1", size=7, **fields)


def test_the_owners_own_file_goes(storage, remover):
    key = store(storage, "a.txt", owned())
    assert remover.remove(Removal(key, dropped_by=OWNER, hash="h1")) is Verdict.REMOVED
    assert not storage.exists(key)


@pytest.mark.parametrize(
    "dropped_by, digest",
    [
        pytest.param(OTHER, "h1", id="another-record"),
        pytest.param(OWNER, "forged", id="other-content"),
    ],
)
def test_a_file_stored_for_another_record_or_content_stays(storage, remover, dropped_by, digest):
    key = store(storage, "a.txt", owned())
    verdict = remover.remove(Removal(key, dropped_by=dropped_by, hash=digest))
    assert verdict is Verdict.NOT_OWNED
    assert storage.exists(key)


def test_an_attachment_with_no_hash_removes_nothing(storage, remover):
    """A record's attachment without a usable hash describes no content: not even a
    file stored with no hash matches it."""
    key = store(storage, "a.txt", StoredFileMetadata(OWNER, hash=None, size=7))
    assert remover.remove(Removal(key, dropped_by=OWNER, hash=None)) is Verdict.NOT_OWNED
    assert storage.exists(key)


def test_a_shared_file_stays_when_its_owner_drops_it(storage, remover):
    key = store(storage, "a.txt", owned(shared=True))
    assert remover.remove(Removal(key, dropped_by=OWNER, hash="h1")) is Verdict.SHARED
    assert storage.exists(key)


def test_a_file_referenced_again_since_the_plan_stays(storage, remover):
    planned_at = time.time()
    recent = store(storage, "recent.txt", owned(referenced_at=planned_at + 1))
    long_ago = store(storage, "old.txt", owned(referenced_at=planned_at - 3600))
    removal = Removal(recent, dropped_by=OWNER, hash="h1", planned_at=planned_at)
    assert remover.remove(removal) is Verdict.REFERENCED_AGAIN
    removal = Removal(long_ago, dropped_by=OWNER, hash="h1", planned_at=planned_at)
    assert remover.remove(removal) is Verdict.REMOVED
    assert (storage.exists(recent), storage.exists(long_ago)) == (True, False)


def test_keep_old_files_of_the_files_collection_wins(storage, remover):
    key = store(storage, "kept.txt", owned(KEPT_COLLECTION))
    dropped = Removal(key, dropped_by=KEPT_COLLECTION, hash="h1")
    assert remover.remove(dropped) is Verdict.KEPT_BY_SETTING
    # Unreferenced (gc, flush): the collection is read from the metadata.
    assert remover.remove(Removal(key)) is Verdict.KEPT_BY_SETTING
    assert storage.exists(key)
    elsewhere = store(storage, "elsewhere.txt", owned())
    assert remover.remove(Removal(elsewhere)) is Verdict.REMOVED


def test_a_file_without_metadata_goes_only_when_unreferenced(storage, remover):
    key = store(storage, "legacy/plugin.txt", None)
    assert remover.remove(Removal(key, dropped_by=OWNER, hash="h1")) is Verdict.NOT_OWNED
    assert storage.exists(key)
    assert remover.remove(Removal(key)) is Verdict.REMOVED
    assert not storage.exists(key)


def test_global_keep_old_files_keeps_a_file_of_no_known_record(storage):
    remover = remover_for(storage, keep_old_files="true")
    key = store(storage, "legacy/plugin.txt", None)
    assert remover.remove(Removal(key)) is Verdict.KEPT_BY_SETTING
    assert storage.exists(key)


def test_a_dry_run_decides_and_removes_nothing(storage, remover):
    key = store(storage, "a.txt", owned())
    assert remover.remove(Removal(key), dry_run=True) is Verdict.WOULD_REMOVE
    assert storage.exists(key)


def test_a_file_written_again_after_the_cutoff_stays(storage, remover):
    key = store(storage, "a.txt", owned())
    written = storage.stat(key).modified
    assert remover.remove(Removal(key, written_before=written)) is Verdict.GONE
    assert storage.exists(key)
    assert remover.remove(Removal(key, written_before=written + 1)) is Verdict.REMOVED


def test_the_rule_waits_for_the_files_lock(storage):
    """Accepting a copy holds the file's lock: no removal slips in between."""
    remover = remover_for(storage, lock_timeout=0.2)
    key = store(storage, "a.txt", owned())
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with remover.locks.hold(file_lock(key)):
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert holding.wait(5)
        assert remover.remove(Removal(key, dropped_by=OWNER, hash="h1")) is Verdict.UNCHECKED
        assert storage.exists(key)
    finally:
        release.set()
        holder.join()
    assert remover.remove(Removal(key, dropped_by=OWNER, hash="h1")) is Verdict.REMOVED


def test_a_failing_delete_is_reported_not_raised(storage, remover, monkeypatch):
    key = store(storage, "a.txt", owned())

    def failing_delete(key: str) -> None:
        raise StorageUnavailable("disk gone")

    monkeypatch.setattr(storage, "delete", failing_delete)
    assert remover.remove(Removal(key, dropped_by=OWNER, hash="h1")) is Verdict.FAILED


def test_flush_removes_every_file_but_those_kept(storage, remover):
    kept = store(storage, "kept.txt", owned(KEPT_COLLECTION))
    for key, metadata in (("a.txt", owned()), ("b.txt", owned(OTHER, shared=True))):
        store(storage, key, metadata)
    store(storage, "legacy/plugin.txt", None)
    remover.remove_all()
    assert [info.key for info in storage.scan()] == [kept]


def test_remove_dropped_reads_the_attachment_as_a_record_has_it(storage, remover):
    key = store(storage, "a.txt", owned())
    location = storage.url(key)
    remover.remove_dropped({"location": location, "hash": "h1"}, OWNER, keep=location)
    assert storage.exists(key)  # the new upload's own location
    remover.remove_dropped({"location": "https://elsewhere.example/a.txt"}, OWNER)
    remover.remove_dropped(None, OWNER)
    assert storage.exists(key)
    remover.remove_dropped({"location": location, "hash": "h1"}, OWNER)
    assert not storage.exists(key)
