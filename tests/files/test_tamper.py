"""A record's ``attachment`` can only describe a stored file: forged or altered metadata
is refused on every write path, copies are accepted, removal releases the file."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app

MESSAGE = "Attachment metadata cannot be modified."
OTHER = "/v1/buckets/b/collections/review/records"


@pytest.fixture
def uploads(storage_app) -> Uploads:
    """On local storage, then on GCS."""
    return Uploads(storage_app())


@pytest.fixture
def stored(uploads):
    uploads.app.put_json("/v1/buckets/b/collections/review", {}, headers=ALICE)
    return uploads.upload("r1", "a.txt", b"first file").json


def refused(response):
    assert response.status_int == 400
    assert response.json["message"] == MESSAGE
    assert response.json["errno"] == 107
    return response


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"hash": "0" * 64}, id="hash"),
        pytest.param({"size": 1}, id="size"),
        pytest.param({"location": "elsewhere.txt"}, id="missing-file"),
        pytest.param({"location": "https://evil.example.com/x.txt"}, id="outside-storage"),
    ],
)
def test_patch_altering_the_file_is_refused(uploads, stored, change):
    forged = {**stored, **change}
    refused(
        uploads.app.patch_json(
            f"{RECORDS}/r1", {"data": {"attachment": forged}}, headers=ALICE, status=400
        )
    )
    refused(
        uploads.app.put_json(
            f"{RECORDS}/r1", {"data": {"attachment": forged}}, headers=ALICE, status=400
        )
    )
    refused(
        uploads.app.post_json(
            RECORDS, {"data": {"id": "r9", "attachment": forged}}, headers=ALICE, status=400
        )
    )
    assert uploads.record("r1")["data"]["attachment"] == stored
    uploads.record("r9", status=404)


def test_json_patch_and_merge_patch_are_checked(uploads, stored):
    app = uploads.app
    refused(
        app.patch(
            f"{RECORDS}/r1",
            '[{"op": "replace", "path": "/data/attachment/hash", "value": "00"}]',
            headers={**ALICE, "Content-Type": "application/json-patch+json"},
            status=400,
        )
    )
    refused(
        app.patch(
            f"{RECORDS}/r1",
            '{"data": {"attachment": {"size": 2}}}',
            headers={**ALICE, "Content-Type": "application/merge-patch+json"},
            status=400,
        )
    )
    # Descriptive fields are not the file: renaming it is fine.
    app.patch(
        f"{RECORDS}/r1",
        '{"data": {"attachment": {"filename": "renamed.txt"}}}',
        headers={**ALICE, "Content-Type": "application/merge-patch+json"},
    )
    assert uploads.record("r1")["data"]["attachment"]["filename"] == "renamed.txt"
    assert uploads.files() == {stored["location"]}


def test_unrelated_writes_and_unchanged_attachment_pass(uploads, stored):
    app = uploads.app
    app.patch_json(f"{RECORDS}/r1", {"data": {"title": "t"}}, headers=ALICE)
    current = uploads.record("r1")["data"]
    app.put_json(f"{RECORDS}/r1", {"data": {**current, "title": "u"}}, headers=ALICE)
    assert uploads.record("r1")["data"]["attachment"] == stored
    assert uploads.files() == {stored["location"]}


def test_copy_onto_another_record_is_accepted_and_survives_the_owner(uploads, stored):
    app = uploads.app
    app.put_json(f"{OTHER}/r1", {"data": {"attachment": stored}}, headers=ALICE, status=201)
    # The owner moves on: its old file stays, since the copy still references it.
    new = uploads.upload("r1", "b.txt", b"second file").json
    assert uploads.files() == {stored["location"], new["location"]}
    app.delete(f"{RECORDS}/r1", headers=ALICE)
    assert uploads.files() == {stored["location"]}
    # Nor may the copy remove a file it does not own.
    app.delete(f"{OTHER}/r1/attachment", headers=ALICE, status=204)
    assert uploads.files() == {stored["location"]}


@pytest.mark.parametrize(
    "removal",
    [
        pytest.param(("put_json", {"data": {"title": "no file"}}), id="put-without"),
        pytest.param(("patch_json", {"data": {"attachment": None}}), id="patch-null"),
    ],
)
def test_removing_the_field_removes_the_file(uploads, stored, removal):
    method, body = removal
    getattr(uploads.app, method)(f"{RECORDS}/r1", body, headers=ALICE)
    assert not uploads.record("r1")["data"].get("attachment")
    assert uploads.files() == set()


def test_json_patch_remove_removes_the_file(uploads, stored):
    uploads.app.patch(
        f"{RECORDS}/r1",
        '[{"op": "remove", "path": "/data/attachment"}]',
        headers={**ALICE, "Content-Type": "application/json-patch+json"},
    )
    assert "attachment" not in uploads.record("r1")["data"]
    assert uploads.files() == set()


def test_put_without_data_keeps_the_file(uploads, stored):
    uploads.app.put_json(
        f"{RECORDS}/r1", {"permissions": {"read": ["system.Everyone"]}}, headers=ALICE
    )
    assert uploads.record("r1")["data"]["attachment"] == stored
    assert uploads.files() == {stored["location"]}


def test_refused_removal_keeps_the_file(uploads, stored):
    uploads.app.put_json(
        f"{RECORDS}/r1", {"data": {}}, headers={**ALICE, "If-Match": '"1"'}, status=412
    )
    assert uploads.files() == {stored["location"]}


def test_file_stored_by_the_plugin_can_be_copied_when_its_size_matches(uploads, stored):
    uploads.plant_plugin_file("legacy.txt", b"from the plugin")
    attachment = {"location": "legacy.txt", "hash": "unknown", "size": 15, "filename": "l.txt"}
    uploads.app.put_json(f"{RECORDS}/p1", {"data": {"attachment": attachment}}, headers=ALICE)
    refused(
        uploads.app.put_json(
            f"{RECORDS}/p2",
            {"data": {"attachment": {**attachment, "size": 99}}},
            headers=ALICE,
            status=400,
        )
    )


def test_escaped_field_name_does_not_slip_through(uploads, stored):
    body = '{"data": {"\\u0061ttachment": {"location": "x.txt", "hash": "0", "size": 1}}}'
    refused(
        uploads.app.patch(
            f"{RECORDS}/r1",
            body,
            headers={**ALICE, "Content-Type": "application/json"},
            status=400,
        )
    )
    assert uploads.record("r1")["data"]["attachment"] == stored


def json_patch(app, ops, status=200, content_type="application/json-patch+json"):
    return app.patch(
        f"{RECORDS}/r1",
        json.dumps(ops),
        headers={**ALICE, "Content-Type": content_type},
        status=status,
    )


def test_body_in_another_charset_is_checked_as_kinto_reads_it(uploads, stored):
    forged = {**stored, "location": "nope.txt"}
    for charset in ("utf-16", "utf-32"):
        refused(
            uploads.app.patch(
                f"{RECORDS}/r1",
                json.dumps({"data": {"attachment": forged}}).encode(charset),
                headers={**ALICE, "Content-Type": f"application/json; charset={charset}"},
                status=400,
            )
        )
    uploads.app.put(
        f"{RECORDS}/r1",
        json.dumps({"data": {"title": "no file"}}).encode("utf-16"),
        headers={**ALICE, "Content-Type": "application/json; charset=utf-16"},
    )
    assert uploads.files() == set()


def test_json_patch_is_simulated_with_the_record_permissions(uploads, stored):
    forged = {**stored, "location": "nope.txt"}
    refused(
        json_patch(
            uploads.app,
            [
                {"op": "add", "path": "/permissions/read/system.Everyone"},
                {"op": "replace", "path": "/data/attachment", "value": forged},
            ],
            status=400,
        )
    )
    json_patch(
        uploads.app,
        [
            {"op": "add", "path": "/permissions/read/system.Everyone"},
            {"op": "remove", "path": "/data/attachment"},
        ],
    )
    assert uploads.files() == set()


@pytest.mark.parametrize("op", ["move", "copy"])
def test_json_patch_moving_the_attachment_elsewhere_is_refused(uploads, stored, op):
    refused(
        json_patch(uploads.app, [{"op": op, "from": "/data/attachment", "path": "/data/x"}], 400)
    )
    assert uploads.record("r1")["data"]["attachment"] == stored


def test_merge_patch_with_parameters_is_a_plain_update_for_kinto(uploads, stored):
    refused(
        uploads.app.patch(
            f"{RECORDS}/r1",
            json.dumps({"data": {"attachment": {"location": stored["location"]}}}),
            headers={**ALICE, "Content-Type": "application/merge-patch+json; charset=utf-8"},
            status=400,
        )
    )
    assert uploads.record("r1")["data"]["attachment"] == stored


def test_bodies_kinto_would_crash_on_get_a_400(uploads, stored):
    ops = [{"op": "remove", "path": "/data/attachment"}]
    json_patch(uploads.app, ops, 400, "application/json-patch+json; charset=utf-8")
    json_patch(uploads.app, [{"op": "remove", "path": "/data"}], 400)
    assert uploads.record("r1")["data"]["attachment"] == stored


@pytest.mark.unit
def test_metadata_files_and_folders_are_not_attachments(storage_root):
    uploads = Uploads(build_app(storage_root, folder="{bucket_id}/{collection_id}"), storage_root)
    stored = uploads.upload("r1").json
    folder, name = stored["location"].rsplit("/", 1)
    for target in (f"{folder}/.{name}.meta", folder, folder.split("/")[0]):
        size = os.stat(storage_root / target).st_size
        attachment = {"location": target, "size": size, "hash": "x"}
        refused(
            uploads.app.put_json(
                f"{RECORDS}/r2", {"data": {"attachment": attachment}}, headers=ALICE, status=400
            )
        )


def test_a_copy_racing_the_owners_delete_never_points_at_a_deleted_file(uploads, stored):
    middleware = uploads.app.app
    original_delete = middleware.storage.delete
    answers = []

    def copy_meanwhile():
        answers.append(
            uploads.app.put_json(
                f"{OTHER}/r1", {"data": {"attachment": stored}}, headers=ALICE, status="*"
            ).status_int
        )

    def slow_delete(key):
        racer = threading.Thread(target=copy_meanwhile)
        racer.start()
        racer.join(timeout=0.5)  # the copy must wait for the file's lock
        original_delete(key)

    middleware.storage.delete = slow_delete
    uploads.app.delete(f"{RECORDS}/r1", headers=ALICE)
    middleware.storage.delete = original_delete
    for _ in range(100):
        if answers:
            break
        time.sleep(0.05)
    assert answers == [400]
    uploads.app.get(f"{OTHER}/r1", headers=ALICE, status=404)
    assert uploads.files() == set()
