"""Noting a copied file's new reference can be slow (on S3, a copy of the object onto
itself): it happens before the record's lock, so other writers of the record do not wait."""

from __future__ import annotations

import threading

import pytest

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app

pytestmark = pytest.mark.unit


def test_a_slow_note_of_a_copy_does_not_hold_the_records_lock(storage_root):
    uploads = Uploads(build_app(storage_root, lock_timeout_seconds="0.3"), storage_root)
    original = uploads.upload("r1", "original.txt", b"original").json
    storage = uploads.app.app.storage
    noting, go_on = threading.Event(), threading.Event()
    note_reference = storage.note_reference

    def slow_note(key, shared):
        noting.set()
        go_on.wait(5)
        note_reference(key, shared)

    storage.note_reference = slow_note
    answers = []
    copy = threading.Thread(
        target=lambda: answers.append(
            uploads.app.put_json(
                f"{RECORDS}/r2", {"data": {"attachment": original}}, headers=ALICE, status="*"
            ).status_int
        )
    )
    copy.start()
    try:
        assert noting.wait(5)
        # Another writer of r2 while the copy's note is in progress: not held up.
        uploaded = uploads.upload("r2", "meanwhile.txt", b"meanwhile", status="*")
    finally:
        go_on.set()
        copy.join(5)
    storage.note_reference = note_reference
    assert uploaded.status_int == 201, uploaded.json
    assert answers == [200]
    # The copy landed last: r2 holds r1's file, the one uploaded meanwhile is released.
    assert uploads.record("r2")["data"]["attachment"] == original
    assert uploads.files() == {original["location"]}
    assert storage.metadata(storage.key_for(original["location"])).shared


def test_a_copy_is_checked_again_under_the_lock(uploads):
    """Between the early check and the lock, the copied file is gone (its owner replaced
    it, and it was not yet shared): the copy is refused, nothing points at a missing file."""
    original = uploads.upload("r1", "original.txt", b"original").json
    writes = uploads.app.app.writes
    note_copies = writes.note_copies

    def replaced_meanwhile(*args):
        noted = note_copies(*args)
        storage = uploads.app.app.storage
        storage.delete(storage.key_for(original["location"]))
        return noted

    writes.note_copies = replaced_meanwhile
    uploads.app.put_json(
        f"{RECORDS}/r2", {"data": {"attachment": original}}, headers=ALICE, status=400
    )
    writes.note_copies = note_copies
    uploads.app.get(f"{RECORDS}/r2", headers=ALICE, status=404)
