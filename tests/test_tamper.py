"""A record's ``attachment`` can only describe a stored file: forged or altered metadata
is refused on every write path, copies are accepted, removal releases the file."""

from __future__ import annotations

import pytest

from .conftest import ALICE, RECORDS

MESSAGE = "Attachment metadata cannot be modified."
OTHER = "/v1/buckets/b/collections/review/records"


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
    legacy = uploads.base_path / "legacy.txt"
    legacy.write_bytes(b"from the plugin")
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
