"""The tus 1.0 protocol on a record's attachment URL, against a real in-process Kinto."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time

import pytest
from webob import Request

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, auth, build_app
from ..helpers.spool import expire_uploads, spool_leftovers

pytestmark = pytest.mark.unit

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}
URL = f"{RECORDS}/r1/attachment"


def encoded(**metadata: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items()
    )


@pytest.fixture
def tus(storage_root, tmp_path) -> Uploads:
    spool = tmp_path / "spool"
    app = build_app(storage_root, **{"resumable.spool_path": str(spool), "max_size_bytes": "1000"})
    return Uploads(app, storage_root)


def create(tus, length: int, headers=None, status=201, url=URL, **metadata: str):
    metadata = {"filename": "notes.txt", **metadata}
    return tus.app.post(
        url,
        headers={
            **ALICE,
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": encoded(**metadata),
            **(headers or {}),
        },
        status=status,
    )


def patch(tus, location: str, offset: int, body: bytes, headers=None, status=204):
    return tus.app.patch(
        location,
        body,
        headers={**ALICE, **TUS, **STREAM, "Upload-Offset": str(offset), **(headers or {})},
        status=status,
    )


def test_an_upload_in_three_pieces_ends_as_a_multipart_upload_ends(tus):
    old = tus.upload("r1", "old.txt", b"old").json
    content = b"0123456789" * 30
    created = create(tus, len(content), data='{"title": "resumed"}')
    location = created.headers["Location"]
    assert location.startswith(f"http://localhost{URL}/uploads/")
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert "GMT" in created.headers["Upload-Expires"]
    for start in (0, 100, 200):
        answer = patch(tus, location, start, content[start : start + 100])
        assert answer.headers["Upload-Offset"] == str(start + 100)
        if start < 200:
            head = tus.app.head(location, headers={**ALICE, **TUS})
            assert head.headers["Upload-Offset"] == str(start + 100)
            assert head.headers["Upload-Length"] == "300"
            assert head.headers["Cache-Control"] == "no-store"
    record = tus.record("r1")["data"]
    assert record["title"] == "resumed"
    attachment = record["attachment"]
    assert attachment["hash"] == hashlib.sha256(content).hexdigest()
    assert attachment["size"] == 300 and attachment["filename"] == "notes.txt"
    assert tus.path_of(attachment["location"]).read_bytes() == content
    assert tus.files() == {attachment["location"]}  # the old file was released
    assert old["location"] != attachment["location"]
    tus.app.head(location, headers={**ALICE, **TUS}, status=404)  # nothing left


def test_a_wrong_offset_is_409_and_changes_nothing(tus):
    location = create(tus, 10).headers["Location"]
    patch(tus, location, 0, b"abc")
    answer = patch(tus, location, 0, b"abc", status=409)
    assert answer.headers["Tus-Resumable"] == "1.0.0"
    head = tus.app.head(location, headers={**ALICE, **TUS})
    assert head.headers["Upload-Offset"] == "3"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_checksums_are_checked_and_a_mismatch_drops_the_piece(tus, algorithm):
    location = create(tus, 6).headers["Location"]
    digest = hashlib.new(algorithm, b"abc").digest()
    good = f"{algorithm} {base64.b64encode(digest).decode()}"
    patch(tus, location, 0, b"abc", headers={"Upload-Checksum": good})
    bad = f"{algorithm} {base64.b64encode(hashlib.new(algorithm, b'xyz').digest()).decode()}"
    patch(tus, location, 3, b"def", headers={"Upload-Checksum": bad}, status=460)
    assert tus.app.head(location, headers={**ALICE, **TUS}).headers["Upload-Offset"] == "3"
    patch(tus, location, 3, b"def")
    assert tus.record("r1")["data"]["attachment"]["size"] == 6


def test_an_upload_belongs_to_its_creator(tus):
    tus.app.put_json(
        "/v1/buckets/b/collections/c",
        {"permissions": {"write": ["system.Authenticated"]}},
        headers=ALICE,
    )
    location = create(tus, 3).headers["Location"]
    bob = auth("bob")
    tus.app.head(location, headers={**bob, **TUS}, status=404)
    tus.app.patch(
        location, b"abc", headers={**bob, **TUS, **STREAM, "Upload-Offset": "0"}, status=404
    )
    tus.app.delete(location, headers={**bob, **TUS}, status=404)
    tus.app.head(location, headers=TUS, status=404)
    patch(tus, location, 0, b"abc")


def test_permission_extension_and_size_are_decided_at_creation(tus):
    create(tus, 3, headers={"Authorization": auth("bob")["Authorization"]}, status=403)
    tus.app.post(
        URL,
        headers={**TUS, "Upload-Length": "3", "Upload-Metadata": encoded(filename="a.txt")},
        status=401,
    )
    refused = create(tus, 3, status=400, filename="tool.exe")
    assert refused.json["message"] == "body: File extension is not allowed."
    too_large = create(tus, 1001, status=413)
    assert "exceeds the limit (1000 bytes)" in too_large.json["message"]
    create(tus, 3, status=400, data="[1, 2]")
    tus.app.post(URL, headers={**ALICE, **TUS, "Upload-Length": "3"}, status=400)  # no name
    other = tus.app.post(
        URL, headers={**ALICE, "Tus-Resumable": "0.2.2", "Upload-Length": "3"}, status=412
    )
    assert other.headers["Tus-Version"] == "1.0.0"
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)


def test_termination_leaves_nothing(tus, tmp_path):
    location = create(tus, 10).headers["Location"]
    patch(tus, location, 0, b"abc")
    tus.app.delete(location, headers={**ALICE, **TUS}, status=204)
    tus.app.head(location, headers={**ALICE, **TUS}, status=404)
    assert spool_leftovers(tmp_path / "spool") == []


def test_creation_with_upload_and_method_override(tus):
    created = tus.app.post(
        URL,
        b"hello",
        headers={
            **ALICE,
            **TUS,
            **STREAM,
            "Upload-Length": "11",
            "Upload-Metadata": encoded(filename="hi.txt"),
        },
        status=201,
    )
    assert created.headers["Upload-Offset"] == "5"
    tus.app.post(
        created.headers["Location"],
        b" world",
        headers={**ALICE, **TUS, **STREAM, "Upload-Offset": "5", "X-HTTP-Method-Override": "PATCH"},
        status=204,
    )
    assert (
        tus.path_of(tus.record("r1")["data"]["attachment"]["location"]).read_bytes()
        == b"hello world"
    )


def test_bytes_past_the_length_are_refused(tus):
    location = create(tus, 3).headers["Location"]
    patch(tus, location, 0, b"abcdef", status=400)
    assert tus.app.head(location, headers={**ALICE, **TUS}).headers["Upload-Offset"] == "0"


def test_an_expired_upload_is_gone(tus, tmp_path):
    location = create(tus, 3).headers["Location"]
    tus.app.head(location, headers={**ALICE, **TUS}, status=200)
    expire_uploads(tmp_path / "spool")
    tus.app.head(location, headers={**ALICE, **TUS}, status=404)
    assert spool_leftovers(tmp_path / "spool") == []


def test_content_refused_at_completion_removes_the_upload(tus, tmp_path):
    html = b"<html><script>alert(1)</script></html>"
    location = create(tus, len(html), filename="photo.png").headers["Location"]
    answer = patch(tus, location, 0, html, status=400)
    assert answer.json["message"] == "body: File content does not match its extension."
    assert tus.files() == set() and spool_leftovers(tmp_path / "spool") == []
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)


def test_discovery_and_capability(tus):
    options = tus.app.options(URL, headers=TUS, status=204)
    assert options.headers["Tus-Version"] == "1.0.0"
    assert "checksum" in options.headers["Tus-Extension"]
    assert options.headers["Tus-Max-Size"] == "1000"
    assert options.headers["Tus-Checksum-Algorithm"] == "sha1,sha256"
    preflight = tus.app.options(
        f"{URL}/uploads/{'0' * 32}",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Upload-Offset, Tus-Resumable",
        },
    )
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Upload-Offset" in preflight.headers["Access-Control-Allow-Headers"]
    created = create(tus, 3, headers={"Origin": "https://app.example"})
    exposed = created.headers["Access-Control-Expose-Headers"]
    assert "Location" in exposed and "Upload-Offset" in exposed


def test_two_patches_at_one_offset_one_wins(storage_root, tmp_path):
    """The offset check and the write are one step (the upload's lock): a PATCH arriving
    while another one writes at the same offset gets 409, and only one piece is kept."""
    app = build_app(
        storage_root,
        **{"resumable.spool_path": str(tmp_path / "spool"), "lock_timeout_seconds": "0.3"},
    )
    tus = Uploads(app, storage_root)
    location = create(tus, 10).headers["Location"]
    path = location.removeprefix("http://localhost")
    writing, answers = threading.Event(), []

    class SlowBody(io.BytesIO):
        def read(self, size=-1):
            writing.set()
            time.sleep(0.6)  # longer than the other PATCH waits for the lock
            return super().read(size)

    def first():
        request = Request.blank(
            path, method="PATCH", headers={**ALICE, **TUS, **STREAM, "Upload-Offset": "0"}
        )
        request.environ["wsgi.input"] = SlowBody(b"abcde")
        request.environ["CONTENT_LENGTH"] = "5"
        answers.append(request.get_response(app.app).status_int)

    thread = threading.Thread(target=first)
    thread.start()
    writing.wait(5)
    second = patch(tus, location, 0, b"vwxyz", status=409)
    thread.join(5)
    assert answers == [204]
    assert second.json["code"] == 409
    assert tus.app.head(location, headers={**ALICE, **TUS}).headers["Upload-Offset"] == "5"
    patch(tus, location, 5, b"fghij")
    stored = tus.record("r1")["data"]["attachment"]
    assert tus.path_of(stored["location"]).read_bytes() == b"abcdefghij"


def test_permission_revoked_before_the_last_piece(tus, tmp_path):
    """The last PATCH gets Kinto's refusal, and the upload is gone (nothing stored)."""
    collection = "/v1/buckets/b/collections/c"
    tus.app.put_json(
        collection, {"permissions": {"write": ["system.Authenticated"]}}, headers=ALICE
    )
    bob = auth("bob")
    location = create(tus, 6, headers={"Authorization": bob["Authorization"]}).headers["Location"]
    headers = {**bob, **TUS, **STREAM}
    tus.app.patch(location, b"abc", headers={**headers, "Upload-Offset": "0"}, status=204)
    tus.app.patch_json(collection, {"permissions": {"write": []}}, headers=ALICE)
    refused = tus.app.patch(location, b"def", headers={**headers, "Upload-Offset": "3"}, status=403)
    assert refused.json["code"] == 403
    assert tus.files() == set() and spool_leftovers(tmp_path / "spool") == []
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)


def test_a_resumable_upload_to_a_private_collection_ends_private(storage_root, tmp_path):
    app = build_app(
        storage_root,
        **{"resumable.spool_path": str(tmp_path / "spool"), "resources.b.c.private": "true"},
    )
    tus = Uploads(app, storage_root)
    location = create(tus, 5).headers["Location"]
    patch(tus, location, 0, b"hello")
    attachment = tus.record("r1")["data"]["attachment"]
    assert attachment["location"].startswith(f"http://localhost{URL}?key=_private/")
    assert app.get(attachment["location"], status=401)
    assert app.get(attachment["location"], headers=ALICE).body == b"hello"
