"""Deletes of records, collections and buckets, and flush, remove the files beneath,
only once Kinto confirmed; and only as many records are read as have attachments."""

from __future__ import annotations

import io
import json

import kinto
import pytest
import webtest

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.protocol.paths import Kind
from kinto_attachment_mw.writes.screening import may_affect_files

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, auth, kinto_settings

BOB = auth("bob")


@pytest.fixture
def uploads(storage_app) -> Uploads:
    """On local storage, then on GCS."""
    return Uploads(storage_app())


def test_record_delete_removes_its_file(uploads):
    kept = uploads.upload("r1", "a.txt", b"a").json["location"]
    uploads.upload("r2", "b.txt", b"b")
    uploads.app.delete(f"{RECORDS}/r2", headers=ALICE)
    assert uploads.files() == {kept}


def test_refused_record_delete_keeps_the_file(uploads):
    location = uploads.upload("r1").json["location"]
    uploads.app.delete(f"{RECORDS}/r1", headers=BOB, status=403)
    uploads.app.delete(f"{RECORDS}/r1", headers={**ALICE, "If-Match": '"1"'}, status=412)
    assert uploads.files() == {location}
    assert uploads.record("r1")["data"]["attachment"]["location"] == location


def test_delete_of_a_record_without_attachment_removes_nothing(uploads):
    location = uploads.upload("r1").json["location"]
    uploads.app.put_json(f"{RECORDS}/plain", {"data": {"x": 1}}, headers=ALICE)
    uploads.app.delete(f"{RECORDS}/plain", headers=ALICE)
    assert uploads.files() == {location}


def test_plural_record_delete_removes_the_files_of_deleted_records_only(uploads):
    doomed = uploads.upload("r1", data={"kind": "old"}).json["location"]
    kept = uploads.upload("r2", data={"kind": "new"}).json["location"]
    response = uploads.app.delete(f"{RECORDS}?kind=old", headers=ALICE)
    assert [item["id"] for item in response.json["data"]] == ["r1"]
    assert uploads.files() == {kept}
    assert doomed not in uploads.files()


@pytest.mark.parametrize(
    ("path", "other_collection_survives"),
    [
        pytest.param("/v1/buckets/b/collections/c", True, id="collection"),
        pytest.param("/v1/buckets/b/collections", False, id="collections"),
        pytest.param("/v1/buckets/b", False, id="bucket"),
        pytest.param("/v1/buckets", False, id="buckets"),
    ],
)
def test_collection_and_bucket_deletes_remove_every_file_beneath(
    uploads, path, other_collection_survives
):
    app = uploads.app
    app.put_json("/v1/buckets/b/collections/d", {}, headers=ALICE)
    uploads.upload("r1")
    in_d = uploads.upload("r2", path="/v1/buckets/b/collections/d/records/r2/attachment")
    app.put_json("/v1/buckets/other", {}, headers=BOB)
    app.put_json("/v1/buckets/other/collections/c", {}, headers=BOB)
    bobs = uploads.upload(
        "r3", headers=BOB, path="/v1/buckets/other/collections/c/records/r3/attachment"
    ).json["location"]
    app.delete(path, headers=ALICE)
    survivors = {bobs, in_d.json["location"]} if other_collection_survives else {bobs}
    assert uploads.files() == survivors


def test_keep_old_files_per_collection_applies_to_deletes(storage_app):
    uploads = Uploads(storage_app(**{"resources.b.c.keep_old_files": "true"}))
    uploads.app.put_json("/v1/buckets/b/collections/d", {}, headers=ALICE)
    kept = uploads.upload("r1").json["location"]
    uploads.upload("r2", path="/v1/buckets/b/collections/d/records/r2/attachment")
    uploads.app.delete("/v1/buckets/b", headers=ALICE)
    assert uploads.files() == {kept}


def test_default_bucket_deletes_remove_files(uploads):
    app = uploads.app
    path = "/v1/buckets/default/collections/mine/records/r1/attachment"
    uploads.upload(path=path)
    uploads.upload(path=path.replace("r1", "r2"))
    app.delete("/v1/buckets/default/collections/mine/records/r1", headers=ALICE)
    assert len(uploads.files()) == 1
    app.delete("/v1/buckets/default/collections/mine", headers=ALICE)
    assert uploads.files() == set()


def test_flush_removes_every_file(uploads):
    uploads.upload("r1")
    uploads.upload("r2")
    uploads.app.post("/v1/__flush__", status=202)
    assert uploads.files() == set()


def test_flush_keeps_files_that_keep_old_files_protects(storage_app):
    uploads = Uploads(storage_app(keep_old_files="true"))
    location = uploads.upload("r1").json["location"]
    uploads.app.post("/v1/__flush__", status=202)
    assert uploads.files() == {location}


@pytest.mark.unit
def test_flush_endpoint_off_removes_nothing(storage_root):
    settings = kinto_settings(storage_root)
    settings["kinto.includes"] = "kinto.plugins.default_bucket"
    app = webtest.TestApp(AttachmentMiddleware(kinto.main({}, **settings), settings))
    uploads = Uploads(app, storage_root)
    location = uploads.upload("r1").json["location"]
    app.post("/v1/__flush__", status=404)
    assert uploads.files() == {location}


class ListingCounter:
    """Between the middleware and Kinto: counts the objects Kinto lists to the middleware."""

    def __init__(self, app):
        self.app = app
        self.listed = 0

    def __call__(self, environ, start_response):
        request = webtest.TestRequest(environ)
        response = request.get_response(self.app)
        if environ["REQUEST_METHOD"] == "GET" and response.content_type == "application/json":
            data = json.loads(response.body).get("data")
            if isinstance(data, list):
                self.listed += len(data)
        return response(environ, start_response)

    @property
    def registry(self):
        return self.app.registry


@pytest.mark.unit
def test_delete_reads_records_with_attachments_only(storage_root):
    settings = kinto_settings(storage_root)
    counter = ListingCounter(kinto.main({}, **settings))
    app = webtest.TestApp(AttachmentMiddleware(counter, settings))
    uploads = Uploads(app, storage_root)
    for start in range(0, 500, 25):
        app.post_json(
            "/v1/batch",
            {
                "defaults": {"method": "PUT", "body": {"data": {"filler": "x" * 20}}},
                "requests": [{"path": f"{RECORDS}/n{n}"} for n in range(start, start + 25)],
            },
            headers=ALICE,
        )
    for record_id in ("a1", "a2", "a3"):
        uploads.upload(record_id)
    counter.listed = 0
    app.delete("/v1/buckets/b", headers=ALICE)
    assert uploads.files() == set()
    # one collection listed, then the three records with attachments: not the 500 others
    assert counter.listed == 1 + 3


@pytest.mark.unit
def test_a_body_read_for_a_look_goes_on_as_kintos_parser_read_it():
    """Even a body that cannot touch ``attachment`` is not forwarded as the client's bytes:
    Kinto receives what its own parser read, re-serialized, in a stream it can seek."""
    body = b'{"data": {"title": "patched"}} \t\r\n'
    environ = {
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    assert not may_affect_files(environ, "PATCH", Kind.RECORD)
    assert environ["wsgi.input"].read() == b'{"data":{"title":"patched"}}'
    assert environ["CONTENT_LENGTH"] == "28"
    assert environ["webob.is_body_seekable"] is True


@pytest.mark.unit
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"data": {"title": "patched"}}'[:10], id="cut-short"),
        pytest.param(b'{"data": {"title": "patched"}} // a comment', id="not-json"),
        pytest.param(b'{"data": {"title": NaN}}', id="nan"),
    ],
)
def test_a_body_kintos_parser_refuses_takes_the_careful_way(body):
    """Cut short or not JSON to Kinto's parser: never forwarded, the careful way answers."""
    environ = {
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "30" if len(body) == 10 else str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    assert may_affect_files(environ, "PATCH", Kind.RECORD)


def test_null_is_no_attachment_everywhere(uploads):
    """What ``DELETE .../attachment`` leaves (``null``) is "no attachment" to a new upload,
    to record writes, and to deletes of the record or of its collection."""
    app = uploads.app
    uploads.upload("r1", "a.txt", b"a")
    app.delete(f"{RECORDS}/r1/attachment", headers=ALICE, status=204)
    app.put_json(f"{RECORDS}/r2", {"data": {"attachment": None}}, headers=ALICE)
    app.patch_json(f"{RECORDS}/r2", {"data": {"attachment": None, "x": 1}}, headers=ALICE)
    again = uploads.upload("r1", "b.txt", b"b").json
    assert again["hash"] == uploads.record("r1")["data"]["attachment"]["hash"]
    assert uploads.files() == {again["location"]}
    app.delete(f"{RECORDS}/r2", headers=ALICE)
    app.delete("/v1/buckets/b/collections/c", headers=ALICE)
    assert uploads.files() == set()
