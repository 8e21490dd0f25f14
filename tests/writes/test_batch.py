"""``POST /v1/batch``: sub-requests get the same checks and clean-up as direct ones."""

from __future__ import annotations

import threading

import pytest

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app

pytestmark = pytest.mark.unit

BATCH = "/v1/batch"


def batch(app, requests, defaults=None, status=200):
    body = {"requests": requests}
    if defaults is not None:
        body["defaults"] = defaults
    return app.post_json(BATCH, body, headers=ALICE, status=status)


def test_uploads_cannot_be_batched(uploads):
    response = batch(
        uploads.app,
        [{"method": "POST", "path": f"{RECORDS}/r1/attachment", "body": {"data": {}}}],
        status=400,
    )
    assert "cannot be uploaded in a batch" in response.json["message"]
    assert "attachment URL on its own" in response.json["message"]


@pytest.mark.parametrize(
    "path", [f"{RECORDS}/r1/attachment", "/v1/buckets/b/collections/c/records/r1/attachment"]
)
def test_attachment_removal_in_a_batch_answers_as_the_direct_request(uploads, path):
    uploads.upload("r1", data={"title": "kept"})
    response = batch(uploads.app, [{"method": "DELETE", "path": path}])
    (answer,) = response.json["responses"]
    assert (answer["status"], answer["path"], answer["body"]) == (204, path, "")
    assert "Content-Type" not in answer["headers"]
    record = uploads.record("r1")["data"]
    assert record["attachment"] is None
    assert record["title"] == "kept"
    assert uploads.files() == set()


def test_attachment_removal_in_a_batch_ignores_defaults_bodies(uploads):
    uploads.upload("r1")
    batch(
        uploads.app,
        [
            {"method": "DELETE", "path": f"{RECORDS}/r1/attachment"},
            {"method": "PUT", "path": f"{RECORDS}/r2"},
        ],
        defaults={
            "body": {"data": {"x": 1}},
            "headers": {"Content-Type": "application/merge-patch+json"},
        },
    )
    assert uploads.record("r1")["data"] == {**uploads.record("r1")["data"], "attachment": None}
    assert "x" not in uploads.record("r1")["data"]
    assert uploads.record("r2")["data"]["x"] == 1
    assert uploads.files() == set()


def test_attachment_removal_in_a_batch_keeps_the_file_when_kinto_refuses(uploads):
    location = uploads.upload("r1").json["location"]
    answer = batch(
        uploads.app,
        [{"method": "DELETE", "path": f"{RECORDS}/r1/attachment", "headers": {"If-Match": '"1"'}}],
    ).json["responses"][0]
    assert (answer["status"], answer["path"]) == (412, f"{RECORDS}/r1/attachment")
    missing = batch(uploads.app, [{"method": "DELETE", "path": f"{RECORDS}/nope/attachment"}]).json[
        "responses"
    ][0]
    assert (missing["status"], missing["body"]["details"]["resource_name"]) == (404, "record")
    assert uploads.record("r1")["data"]["attachment"]["location"] == location
    assert uploads.files() == {location}


def test_a_batch_kinto_would_refuse_is_refused_with_an_attachment_removal(uploads):
    location = uploads.upload("r1").json["location"]
    response = batch(
        uploads.app, [{"method": "DELETE", "path": f"{RECORDS}/r1/attachment"}, "nope"], status=400
    )
    assert response.json["errno"] == 107
    assert uploads.files() == {location}


def test_attachment_removal_waits_for_the_whole_batch(uploads):
    """Kinto refuses the whole batch (too many sub-requests): nothing was committed, so
    the file stays."""
    location = uploads.upload("r1").json["location"]
    too_many = [{"method": "DELETE", "path": f"{RECORDS}/r1/attachment"}] + [
        {"method": "GET", "path": f"{RECORDS}/r{index}"} for index in range(30)
    ]
    batch(uploads.app, too_many, status=400)
    assert uploads.record("r1")["data"]["attachment"]["location"] == location
    assert uploads.files() == {location}


def test_forged_attachment_in_a_batch_refuses_the_whole_batch(uploads):
    stored = uploads.upload("r1").json
    response = batch(
        uploads.app,
        [
            {"method": "PUT", "path": f"{RECORDS}/r2", "body": {"data": {"x": 1}}},
            {"path": "/buckets/b/collections/c/records/r3"},
        ],
        defaults={"method": "PUT", "body": {"data": {"attachment": {**stored, "size": 5}}}},
        status=400,
    )
    assert response.json["message"] == "Attachment metadata cannot be modified."
    uploads.record("r2", status=404)
    uploads.record("r3", status=404)


def test_deletes_in_a_batch_remove_files(uploads):
    uploads.app.put_json("/v1/buckets/b/collections/d", {}, headers=ALICE)
    uploads.upload("r1")
    uploads.upload("r2")
    kept = uploads.upload("r3").json["location"]
    uploads.upload("r4", path="/v1/buckets/b/collections/d/records/r4/attachment")
    batch(
        uploads.app,
        [
            {"path": f"{RECORDS}/r1"},
            {"path": "/buckets/b/collections/c/records?id=r2"},
            {"path": "/buckets/b/collections/d"},
            {"path": f"{RECORDS}/missing"},
        ],
        defaults={"method": "DELETE"},
    )
    assert uploads.files() == {kept}


def test_removal_and_copy_in_one_batch_keeps_the_file(uploads):
    stored = uploads.upload("r1").json
    batch(
        uploads.app,
        [
            {"method": "PUT", "path": f"{RECORDS}/r1", "body": {"data": {"x": 1}}},
            {"method": "PUT", "path": f"{RECORDS}/r2", "body": {"data": {"attachment": stored}}},
        ],
    )
    assert uploads.record("r2")["data"]["attachment"] == stored
    assert uploads.files() == {stored["location"]}


def test_removal_in_a_batch_removes_the_file(uploads):
    uploads.upload("r1")
    batch(
        uploads.app,
        [{"method": "PATCH", "path": f"{RECORDS}/r1", "body": {"data": {"attachment": None}}}],
    )
    assert uploads.files() == set()


def test_failed_sub_request_removes_nothing(uploads):
    location = uploads.upload("r1").json["location"]
    response = batch(
        uploads.app,
        [{"method": "DELETE", "path": f"{RECORDS}/r1", "headers": {"If-Match": '"1"'}}],
    )
    assert response.json["responses"][0]["status"] == 412
    assert uploads.files() == {location}


def test_flush_in_a_batch_removes_every_file(uploads):
    uploads.upload("r1")
    response = batch(uploads.app, [{"method": "POST", "path": "/__flush__"}])
    assert response.json["responses"][0]["status"] == 202
    assert uploads.files() == set()


def test_sub_request_paths_are_read_as_kinto_follows_them(uploads):
    stored = uploads.upload("r1").json
    forged = {**stored, "location": "nope.txt"}
    for path in (f"{RECORDS}/r2/", "/buckets/b/collections/c/records/%72%32"):
        batch(
            uploads.app,
            [{"method": "PUT", "path": path, "body": {"data": {"attachment": forged}}}],
            status=400,
        )
    batch(uploads.app, [{"method": "DELETE", "path": f"{RECORDS}/r1/"}])
    assert uploads.files() == set()


def test_defaults_that_cannot_merge_get_a_400(uploads):
    response = batch(
        uploads.app,
        [{"method": "PUT", "path": f"{RECORDS}/r1", "body": {"data": 7}}],
        defaults={"body": {"data": {"x": 1}}},
        status=400,
    )
    assert response.json["errno"] == 107


def test_a_batch_waits_for_the_records_it_writes(storage_root):
    uploads = Uploads(build_app(storage_root, lock_timeout_seconds="0.2"), storage_root)
    stored = uploads.upload("r1").json
    held, release = threading.Event(), threading.Event()

    def upload_in_progress():
        with uploads.app.app.locks.hold("/buckets/b/collections/c/records/r1"):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=upload_in_progress)
    holder.start()
    try:
        held.wait(5)
        response = batch(
            uploads.app,
            [{"method": "PUT", "path": f"{RECORDS}/r1", "body": {"data": {"x": 1}}}],
            status=409,
        )
    finally:
        release.set()
        holder.join()
    assert response.json["errno"] == 122
    assert uploads.record("r1")["data"]["attachment"] == stored
