"""Injected faults: a failed upload leaves the record unchanged and no new file; the
previous file goes only once the new record state is committed."""

from __future__ import annotations

import json
import logging

import kinto
import pytest
import webtest

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.protocol.client import INTERNAL_MARKER
from kinto_attachment_mw.storage import LocalStorage, StorageUnavailable

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, auth, kinto_settings

pytestmark = pytest.mark.unit


class FaultyStorage(LocalStorage):
    fail_on: set[str] = set()

    def open_writer(self, key, content_type, size_hint=None, *, private=False):
        if "open" in self.fail_on:
            raise StorageUnavailable("disk on fire")
        writer = super().open_writer(key, content_type, size_hint)
        storage = self
        original_write, original_commit = writer.write, writer.commit

        def write(chunk):
            if "write" in storage.fail_on:
                writer.abort()
                raise StorageUnavailable("disk full")
            original_write(chunk)

        def commit(metadata):
            if "commit" in storage.fail_on:
                writer.abort()
                raise StorageUnavailable("rename failed")
            return original_commit(metadata)

        writer.write, writer.commit = write, commit
        return writer

    def delete(self, key):
        if "delete" in self.fail_on:
            raise StorageUnavailable("delete failed")
        super().delete(key)


class FaultyKinto:
    """Wraps Kinto; misbehaves on the middleware's internal record writes when asked."""

    def __init__(self, app):
        self.app = app
        self.on_write = None  # callable(environ) -> optional (status, body)
        self.on_client = None  # the same, for requests the client sent (forwarded as they are)

    def __call__(self, environ, start_response):
        if not environ.get(INTERNAL_MARKER) and self.on_client:
            answer = self.on_client(environ)
            if answer is not None:
                status, body = answer
                start_response(status, [("Content-Type", "application/json")])
                return [json.dumps(body).encode()]
        is_write = environ.get(INTERNAL_MARKER) and environ["REQUEST_METHOD"] in ("PATCH", "PUT")
        if is_write and environ.get("HTTP_IF_MATCH") != '"1"' and self.on_write:
            answer = self.on_write(environ)
            if answer is not None:
                status, body = answer
                start_response(status, [("Content-Type", "application/json")])
                return [json.dumps(body).encode()]
        return self.app(environ, start_response)


@pytest.fixture
def rig(storage_root):
    settings = kinto_settings(storage_root)
    kinto_app = FaultyKinto(kinto.main({}, **settings))
    storage = FaultyStorage(str(storage_root))
    storage.fail_on = set()
    middleware = AttachmentMiddleware(kinto_app, settings, storage=storage)
    uploads = Uploads(webtest.TestApp(middleware), storage_root)
    uploads.kinto = kinto_app
    uploads.storage = storage
    return uploads


@pytest.mark.parametrize("step", ["open", "write", "commit"])
def test_storage_failure_gives_503_and_changes_nothing(rig, step):
    current = rig.upload("r1", "current.txt", b"current").json
    rig.storage.fail_on = {step}
    response = rig.upload("r1", "new.txt", b"new", status=503)
    assert response.json["errno"] == 201
    assert response.json["code"] == 503
    rig.upload("r2", "new.txt", b"new", status=503)
    assert rig.files() == {current["location"]}
    assert rig.record("r1")["data"]["attachment"] == current
    rig.record("r2", status=404)


@pytest.mark.parametrize(
    "status,errno", [("500 Internal Server Error", 999), ("503 Service Unavailable", 201)]
)
def test_kinto_failure_on_record_update_removes_new_file(rig, status, errno):
    current = rig.upload("r1", "current.txt", b"current").json
    code = int(status.split()[0])
    rig.kinto.on_write = lambda environ: (status, {"code": code, "errno": errno, "error": "x"})
    response = rig.upload("r1", "new.txt", b"new", status=code)
    assert response.json["errno"] == errno
    rig.upload("r2", "new.txt", b"new", status=code)
    assert rig.files() == {current["location"]}
    assert rig.record("r1")["data"]["attachment"] == current


def test_kinto_crash_on_record_update_removes_new_file(rig):
    current = rig.upload("r1", "current.txt", b"current").json

    def crash(environ):
        raise RuntimeError("database went away")

    rig.kinto.on_write = crash
    response = rig.upload("r1", "new.txt", b"new", status=500)
    assert response.json["errno"] == 999
    assert response.content_type == "application/json"
    assert rig.files() == {current["location"]}


def test_a_change_just_before_the_write_is_kept_and_the_upload_rests_on_it(rig):
    """Another write lands between the probe and the upload's write: the upload is
    written on top of it (see also ``test_edits_meanwhile``)."""
    rig.upload("r1", "current.txt", b"current")
    app = rig.app

    def someone_else_writes_first(environ):
        rig.kinto.on_write = None
        app.patch_json(f"{RECORDS}/r1", {"data": {"title": "theirs"}}, headers=auth("alice"))

    rig.kinto.on_write = someone_else_writes_first
    mine = rig.upload("r1", "mine.txt", b"mine", status=200).json
    record = rig.record("r1")["data"]
    assert record["title"] == "theirs"
    assert record["attachment"] == mine
    assert rig.files() == {mine["location"]}


def test_a_creation_just_before_the_write_is_updated(rig):
    def someone_else_creates_first(environ):
        rig.kinto.on_write = None
        rig.app.put_json(f"{RECORDS}/r1", {"data": {"title": "theirs"}}, headers=ALICE)

    rig.kinto.on_write = someone_else_creates_first
    mine = rig.upload("r1", "mine.txt", b"mine", status=200).json
    assert rig.record("r1")["data"]["title"] == "theirs"
    assert rig.record("r1")["data"]["attachment"] == mine
    assert rig.files() == {mine["location"]}


def test_write_conflict_is_retried_once(rig):
    calls = []

    def conflict_once(environ):
        calls.append(environ["REQUEST_METHOD"])
        if len(calls) == 1:
            return ("409 Conflict", {"code": 409, "errno": 122, "error": "Conflict"})
        return None

    rig.kinto.on_write = conflict_once
    meta = rig.upload("r1", "a.txt", b"a").json
    assert len(calls) == 2
    assert rig.record("r1")["data"]["attachment"] == meta


def test_failed_delete_of_old_file_leaves_an_orphan_not_a_dangling_record(rig, caplog):
    old = rig.upload("r1", "old.txt", b"old").json
    rig.storage.fail_on = {"delete"}
    with caplog.at_level(logging.WARNING, logger="kinto_attachment_mw"):
        new = rig.upload("r1", "new.txt", b"new").json
    assert rig.record("r1")["data"]["attachment"] == new
    assert rig.files() == {old["location"], new["location"]}
    assert any(old["location"] in message for message in caplog.messages)


def test_failed_record_update_on_delete_keeps_the_file(rig):
    current = rig.upload("r1", "current.txt", b"current").json
    rig.kinto.on_write = lambda environ: ("503 Service Unavailable", {"code": 503, "errno": 201})
    rig.app.delete(f"{RECORDS}/r1/attachment", headers=ALICE, status=503)
    assert rig.files() == {current["location"]}
    assert rig.record("r1")["data"]["attachment"] == current


UNAVAILABLE = ("503 Service Unavailable", {"code": 503, "errno": 201, "error": "x"})


@pytest.mark.parametrize(
    "method,path",
    [
        pytest.param("DELETE", f"{RECORDS}/r1", id="record"),
        pytest.param("DELETE", "/v1/buckets/b", id="bucket"),
        pytest.param("PUT", f"{RECORDS}/r1", id="put-without-attachment"),
        pytest.param("POST", "/v1/__flush__", id="flush"),
    ],
)
def test_kinto_failing_on_a_delete_keeps_the_files(rig, method, path):
    current = rig.upload("r1", "current.txt", b"current").json
    rig.kinto.on_client = lambda environ: UNAVAILABLE
    rig.app.request(path, method=method, body=b'{"data": {}}', headers=ALICE, status=503)
    rig.kinto.on_client = None
    assert rig.files() == {current["location"]}
    assert rig.record("r1")["data"]["attachment"] == current


def test_failed_file_removal_after_a_delete_leaves_an_orphan(rig, caplog):
    current = rig.upload("r1", "current.txt", b"current").json
    rig.storage.fail_on = {"delete"}
    with caplog.at_level(logging.WARNING, logger="kinto_attachment_mw"):
        rig.app.delete(f"{RECORDS}/r1", headers=ALICE, status=200)
        rig.app.post("/v1/__flush__", status=202)
    rig.record("r1", status=403)  # the bucket is gone with the flush
    assert rig.files() == {current["location"]}
    assert any(current["location"] in message for message in caplog.messages)
