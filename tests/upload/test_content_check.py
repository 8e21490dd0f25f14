"""The first bytes of an upload against its name: content that browsers render or run
under another name is refused before anything is stored; a harmless mismatch is stored
with the type its content shows."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from kinto_attachment_mw.upload.content_check import HEAD_SIZE, sniff

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0" + bytes(200)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n"
HTML = b"<!DOCTYPE html><html><script>alert(document.domain)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
XML = b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml"/>'
EXE = b"MZ" + bytes(200)


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", "<script>alert(1)</script>")
    return buffer.getvalue()


@pytest.fixture
def uploads(storage_root) -> Uploads:
    return Uploads(build_app(storage_root, extensions="any"), storage_root)


@pytest.mark.parametrize(
    "filename,content,detected",
    [
        ("photo.png", HTML, "text/html"),
        ("photo.png", b"\n\n  <p>hello</p>", "text/html"),
        ("photo.jpg", SVG, "image/svg+xml"),
        ("photo.gif", XML, "application/xml"),
        ("photo.png", b"\xef\xbb\xbf<?xml version='1.0'?><svg/>", "image/svg+xml"),
        ("report.png", PDF, "application/pdf"),
        ("photo.png", zipped(), "application/zip"),
        ("photo.jpg", EXE, "application/x-msdownload"),
        ("song.mp3", HTML, "text/html"),
        ("document.pdf", HTML, "text/html"),
        ("archive.zip", PDF, "application/pdf"),
        ("photo.png", HTML + b" " * (3 * HEAD_SIZE), "text/html"),  # past the head
    ],
)
def test_active_content_under_another_name_is_refused_before_it_is_stored(
    uploads, filename, content, detected
):
    response = uploads.upload("r1", filename, content, status=400)
    body = response.json
    assert body["errno"] == 107
    assert body["message"] == "body: File content does not match its extension."
    detail = body["details"][0]
    assert detail["name"] == "attachment"
    assert detail["detected"] == detected
    assert detail["extension"] == filename.rsplit(".", 1)[1]
    assert "upload it under a name with the extension of its content" in detail["description"]
    assert uploads.files() == set()
    uploads.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)


@pytest.mark.parametrize(
    "filename,content,mimetype",
    [
        ("photo.png", PNG, "image/png"),
        ("photo.jpeg", JPEG, "image/jpeg"),
        ("report.pdf", PDF, "application/pdf"),
        ("drawing.svg", SVG, "image/svg+xml"),
        ("feed.xml", XML, "application/xml"),
        ("page.html", HTML, "text/html"),
        ("bundle.zip", zipped(), "application/zip"),
        ("data.json", b'{"a": 1}', "application/json"),
        ("empty.png", b"", "image/png"),
    ],
)
def test_content_that_agrees_with_its_name_is_stored_as_named(uploads, filename, content, mimetype):
    meta = uploads.upload("r1", filename, content).json
    assert meta["mimetype"] == mimetype
    assert uploads.path_of(meta["location"]).read_bytes() == content


@pytest.mark.parametrize(
    "filename,content,mimetype",
    [
        ("photo.jpg", PNG, "image/png"),  # the name was wrong, harmlessly
        ("notes.txt", PNG, "image/png"),
        ("notes.txt", HTML, "text/plain"),  # shown as text, never rendered
        ("model.bin", zipped(), "application/octet-stream"),  # downloaded, never rendered
        ("model.bin", PDF, "application/octet-stream"),
    ],
)
def test_a_harmless_mismatch_is_stored_with_a_type_that_cannot_be_rendered(
    uploads, filename, content, mimetype
):
    meta = uploads.upload("r1", filename, content).json
    assert meta["mimetype"] == mimetype
    assert uploads.path_of(meta["location"]).read_bytes() == content


def test_a_declared_active_type_needs_the_content_to_bear_it_out(uploads):
    declared = uploads.upload("r1", "notes.txt", b"plain words", content_type="text/html").json
    assert declared["mimetype"] == "text/plain"
    shown = uploads.upload("r2", "x.bin", PDF, content_type="application/pdf").json
    assert shown["mimetype"] == "application/pdf"
    harmless = uploads.upload("r3", "x.csv", b"a,b\n", content_type="text/csv").json
    assert harmless["mimetype"] == "text/csv"


def test_the_check_can_be_turned_off_per_resource(storage_root):
    app = build_app(storage_root, extensions="any", **{"resources.b.c.check_content": "false"})
    uploads = Uploads(app, storage_root)
    meta = uploads.upload("r1", "photo.png", HTML).json
    assert meta["mimetype"] == "image/png"
    declared = uploads.upload("r2", "notes.txt", b"x", content_type="text/html").json
    assert declared["mimetype"] == "text/html"  # the client's word, as the plugin took it
    app.put_json("/v1/buckets/b/collections/other", {}, headers=ALICE)
    app.post(
        "/v1/buckets/b/collections/other/records/r1/attachment",
        upload_files=[("attachment", "photo.png", HTML)],
        headers=ALICE,
        status=400,
    )


def test_gzipped_files_are_checked_before_compression(storage_root):
    uploads = Uploads(build_app(storage_root, extensions="any", gzipped="true"), storage_root)
    uploads.upload("r1", "photo.png", HTML, status=400)
    assert uploads.files() == set()
    meta = uploads.upload("r2", "notes.txt", PNG).json
    assert meta["original"]["mimetype"] == "image/png"
    stored = uploads.path_of(meta["location"]).read_bytes()
    assert gzip.decompress(stored) == PNG


def test_sniffing_reads_only_the_head():
    assert sniff(HTML[:5]) is None  # "<!DOC": not yet a pattern
    assert sniff(b"  <b>bold</b>").mimetype == "text/html"
    assert sniff(b"<bx>") is None  # a tag that only starts like one
    assert sniff(b"plain text") is None
    assert sniff(PNG).active is False
    assert sniff(zipped()).active is True
