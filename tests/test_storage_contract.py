"""What every storage backend promises, run against each of them.

A backend joins by adding a param to the ``backend`` fixture; the ``plant_*`` helpers
create, through the backend's own means, what a crashed upload or another program
leaves behind.
"""

from __future__ import annotations

import os
import time

import pytest

from kinto_attachment_mw.storage import LocalStorage
from kinto_attachment_mw.storage.local import TEMP_PREFIX

OWNER = "/buckets/b/collections/c/records/r"


class LocalBackend:
    def __init__(self, tmp_path):
        self.storage = LocalStorage(str(tmp_path / "root"), base_url="https://files.example.com/")
        self.storage.ensure_root()

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


@pytest.fixture(params=["local"])
def backend(request, tmp_path):
    return LocalBackend(tmp_path)


def store(storage, key: str, content: bytes = b"content", **metadata) -> str:
    writer = storage.open_writer(key, "text/plain")
    writer.write(content)
    return writer.commit({"record": OWNER, "size": len(content), **metadata})


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


def test_mark_shared_keeps_the_other_metadata(backend):
    storage = backend.storage
    key = store(storage, "s.txt", b"x", hash="h")
    storage.mark_shared(key)
    storage.mark_shared(key)
    assert storage.metadata(key) == {"record": OWNER, "size": 1, "hash": "h", "shared": True}
    assert [info.key for info in storage.scan()] == [key]


def test_mark_shared_of_a_file_without_metadata_does_nothing(backend):
    storage = backend.storage
    backend.plant_foreign_file("old.txt", b"old")
    storage.mark_shared("old.txt")
    assert storage.metadata("old.txt") is None
    storage.mark_shared("missing.txt")
    assert storage.stat("missing.txt") is None


def test_sweep_removes_old_leftovers_only(backend):
    storage = backend.storage
    key = store(storage, "f/kept.txt")
    backend.plant_leftover("f", age=3600)
    backend.plant_leftover("g", age=3600)
    assert len(list(storage.sweep_leftovers(time.time(), dry_run=True))) == 2
    assert len(list(storage.sweep_leftovers(time.time() - 7200))) == 0
    assert len(list(storage.sweep_leftovers(time.time()))) == 2
    assert list(storage.sweep_leftovers(time.time())) == []
    assert [info.key for info in storage.scan()] == [key]
    assert storage.metadata(key)["record"] == OWNER
