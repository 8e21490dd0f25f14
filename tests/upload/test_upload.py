"""Uploading: record creation and update, metadata, Location, replacement."""

from __future__ import annotations

import hashlib

import pytest

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, auth, build_app

pytestmark = pytest.mark.unit


def test_upload_creates_record_with_metadata(uploads):
    content = b"one,two\n1,2\n"
    response = uploads.upload("r1", "table.csv", content, data={"title": "numbers"})
    assert response.status_int == 201
    meta = response.json
    assert meta["filename"] == "table.csv"
    assert meta["hash"] == hashlib.sha256(content).hexdigest()
    assert meta["size"] == len(content)
    assert meta["mimetype"] == "text/csv"
    assert meta["location"].endswith(".csv")
    assert response.headers["Location"] == f"http://localhost{RECORDS}/r1"
    record = uploads.record("r1")["data"]
    assert record["title"] == "numbers"
    assert record["attachment"] == meta
    assert uploads.path_of(meta["location"]).read_bytes() == content
    assert uploads.files() == {meta["location"]}


def test_upload_updates_existing_record_and_replaces_file(uploads):
    uploads.app.put_json(f"{RECORDS}/r1", {"data": {"title": "kept", "n": 1}}, headers=ALICE)
    first = uploads.upload("r1", "a.txt", b"first", data={"n": 2})
    assert first.status_int == 200
    second = uploads.upload("r1", "b.txt", b"second")
    assert second.status_int == 200
    record = uploads.record("r1")["data"]
    assert record["title"] == "kept" and record["n"] == 2
    assert record["attachment"]["filename"] == "b.txt"
    assert uploads.files() == {second.json["location"]}


def test_keep_old_files_keeps_previous_file(storage_root):
    uploads = Uploads(build_app(storage_root, keep_old_files="true"), storage_root)
    first = uploads.upload("r1", "a.txt", b"first").json
    second = uploads.upload("r1", "b.txt", b"second").json
    assert uploads.files() == {first["location"], second["location"]}


def test_permissions_field_is_applied(uploads, app):
    uploads.upload("r1", permissions={"read": ["system.Everyone"]})
    assert app.get(f"{RECORDS}/r1").json["data"]["attachment"]["filename"] == "hello.txt"


def test_delete_attachment_removes_file_and_field(uploads, app):
    meta = uploads.upload("r1", data={"title": "x"}).json
    app.delete(f"{RECORDS}/r1/attachment", headers=ALICE, status=204)
    record = uploads.record("r1")["data"]
    assert record["attachment"] is None
    assert record["title"] == "x"
    assert not uploads.path_of(meta["location"]).exists()
    assert uploads.files() == set()


def test_read_only_caller_cannot_upload_replace_or_delete(uploads, app):
    """GHSA-hvp4-vrv2-8wrq: readers must not touch attachments."""
    app.patch_json(
        "/v1/buckets/b/collections/c",
        {"permissions": {"read": ["system.Everyone"]}},
        headers=ALICE,
    )
    meta = uploads.upload("r1", content=b"original").json
    for headers, status in (({}, 401), (auth("frank"), 403)):
        uploads.upload("r1", content=b"evil", headers=headers, status=status)
        uploads.upload("rnew", content=b"evil", headers=headers, status=status)
        app.delete(f"{RECORDS}/r1/attachment", headers=headers, status=status)
    assert uploads.files() == {meta["location"]}
    assert uploads.path_of(meta["location"]).read_bytes() == b"original"
    assert uploads.record("r1")["data"]["attachment"] == meta


def test_forged_location_cannot_remove_another_records_file(uploads, app):
    """Only the file stored for a record is removed with it; a copied or forged location
    (another user's file) is left alone."""
    victim = uploads.upload("r1", "victim.txt", b"victim").json
    mallory = auth("mallory")
    app.put_json("/v1/buckets/m", {}, headers=mallory)
    app.put_json("/v1/buckets/m/collections/c", {}, headers=mallory)
    forged = "/v1/buckets/m/collections/c/records/x"
    app.put_json(forged, {"data": {"attachment": victim}}, headers=mallory)
    app.delete(forged + "/attachment", headers=mallory, status=204)
    app.put_json(forged, {"data": {"attachment": victim}}, headers=mallory)
    app.post(
        forged + "/attachment",
        upload_files=[("attachment", "mine.txt", b"mine")],
        headers=mallory,
        status=200,
    )
    assert uploads.path_of(victim["location"]).read_bytes() == b"victim"
    assert uploads.record("r1")["data"]["attachment"] == victim


def test_copied_attachment_survives_removal_from_the_copy(uploads, app):
    original = uploads.upload("r1", "shared.txt", b"shared").json
    app.put_json(f"{RECORDS}/copy", {"data": {"attachment": original}}, headers=ALICE)
    app.delete(f"{RECORDS}/copy/attachment", headers=ALICE, status=204)
    assert uploads.path_of(original["location"]).read_bytes() == b"shared"


def test_deeply_nested_json_is_a_clear_400(uploads):
    response = uploads.upload("r1", data="[" * 200_000, status=400)
    assert response.json["errno"] == 109
    assert uploads.files() == set()


@pytest.mark.parametrize(
    "base_url,prefix",
    [
        ("https://cdn.example.com/files", "https://cdn.example.com/"),
        ("https://cdn.example.com/files/", "https://cdn.example.com/files/"),
        ("/attachments", "/"),
        ("/attachments/", "/attachments/"),
    ],
)
def test_replacement_removes_old_file_whatever_the_base_url(storage_root, base_url, prefix):
    uploads = Uploads(build_app(storage_root, base_url=base_url), storage_root)
    first = uploads.upload("r1", "a.txt", b"first").json
    assert first["location"].startswith(prefix)
    second = uploads.upload("r1", "b.txt", b"second").json
    assert uploads.files() == {second["location"][len(prefix) :]}


def test_non_ascii_names_keep_their_extension(storage_root):
    uploads = Uploads(build_app(storage_root, randomize="false"), storage_root)
    meta = uploads.upload("r1", "日本語.txt", b"x").json
    assert meta["filename"] == "日本語.txt"
    assert meta["location"] == "file.txt"
    randomized = Uploads(build_app(storage_root), storage_root).upload("r2", "日本.txt").json
    assert randomized["location"].endswith(".txt")
