"""A declared type is judged by what it is, on every path a file comes in by: the
multipart part's Content-Type, a tus upload's ``filetype``, the ``mimetypes`` setting.
A type browsers render or run that the content does not bear out is replaced by the one
the name gives; what is stored is the normalized type."""

from __future__ import annotations

import pytest

from kinto_attachment_mw.config import ConfigurationError, parse_settings

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app
from ..resumable.test_tus import encoded

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
TEXT = b"plain words, nothing else\n"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n"
HTML = b"<!DOCTYPE html><html><script>alert(document.domain)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'

#: (filename, content, declared type, what is stored): spellings that got through on
#: both paths.
DISGUISED = [
    pytest.param("notes.txt", TEXT, "application/foo+xml", "text/plain", id="xml-suffix"),
    pytest.param("notes.txt", TEXT, "application/vnd.wap.xhtml+xml", "text/plain", id="wap-xhtml"),
    pytest.param("notes.txt", TEXT, "text/xsl", "text/plain", id="xsl"),
    pytest.param("notes.txt", TEXT, "multipart/x-mixed-replace", "text/plain", id="mixed-replace"),
    pytest.param("notes.txt", TEXT, "text/cache-manifest", "text/plain", id="cache-manifest"),
    pytest.param("notes.txt", TEXT, "Application/X-JavaScript", "text/plain", id="js-spelling"),
    pytest.param("notes.txt", TEXT, "text/jscript", "text/plain", id="jscript"),
    pytest.param("photo.png", PNG, "application/rss+xml", "image/png", id="rss-on-png"),
    pytest.param("notes.txt", TEXT, "text/plain,text/html", "text/plain", id="comma-list"),
    pytest.param("notes.txt", TEXT, "text/*", "text/plain", id="range"),
    # The content bears the declared type out, but the client wrote both: a name whose
    # type is shown as it is (text, data) is no document, whatever is declared.
    pytest.param("notes.txt", HTML, "text/html", "text/plain", id="html-on-txt"),
    pytest.param("notes.txt", SVG, "image/svg+xml", "text/plain", id="svg-on-txt"),
    pytest.param("table.csv", HTML, "TEXT/HTML; charset=utf-8", "text/csv", id="html-on-csv"),
    pytest.param("data.json", HTML, "text/html", "application/json", id="html-on-json"),
    pytest.param("data.json", SVG, "image/svg+xml", "application/json", id="svg-on-json"),
    pytest.param(
        "notes.txt",
        TEXT,
        "TEXT/PLAIN; charset=UTF-8; x=y",
        "text/plain;charset=utf-8",
        id="normalized",
    ),
]
#: Case and parameters: the multipart parser already lower-cased the type and dropped its
#: parameters; tus metadata was compared as it came.
SPELLED = [
    pytest.param("photo.png", PNG, "text/html; charset=utf-8", "image/png", id="html-charset"),
    pytest.param("photo.png", PNG, "TEXT/HTML", "image/png", id="html-upper"),
    pytest.param("photo.png", PNG, "image/svg+xml;x=1", "image/png", id="svg-parameter"),
    pytest.param("notes.csv", TEXT, "Text/CSV", "text/csv", id="lower-cased"),
    pytest.param("x.bin", PDF, "Application/PDF; x=1", "application/pdf", id="pdf-borne-out"),
]


@pytest.fixture
def uploads(storage_root) -> Uploads:
    return Uploads(build_app(storage_root, extensions="any"), storage_root)


@pytest.mark.parametrize("filename,content,declared,stored", DISGUISED)
def test_multipart_part_types_are_judged_by_what_they_are(
    uploads, filename, content, declared, stored
):
    meta = uploads.upload("r1", filename, content, content_type=declared).json
    assert meta["mimetype"] == stored
    assert uploads.record("r1")["data"]["attachment"]["mimetype"] == stored


@pytest.fixture
def tus(storage_root, tmp_path) -> Uploads:
    spool = tmp_path / "spool"
    app = build_app(storage_root, extensions="any", **{"resumable.spool_path": str(spool)})
    return Uploads(app, storage_root)


@pytest.mark.parametrize("filename,content,declared,stored", DISGUISED + SPELLED)
def test_tus_filetypes_are_judged_by_what_they_are(tus, filename, content, declared, stored):
    created = tus.app.post(
        f"{RECORDS}/r1/attachment",
        headers={
            **ALICE,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(content)),
            "Upload-Metadata": encoded(filename=filename, filetype=declared),
        },
        status=201,
    )
    tus.app.patch(
        created.headers["Location"],
        content,
        headers={
            **ALICE,
            "Tus-Resumable": "1.0.0",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
        status=204,
    )
    assert tus.record("r1")["data"]["attachment"]["mimetype"] == stored


def test_the_mimetypes_setting_is_parsed_and_normalized(storage_root):
    app = build_app(storage_root, extensions="any", mimetypes=".ftl:Application/Vnd.Fluent")
    uploads = Uploads(app, storage_root)
    assert uploads.upload("r1", "en.ftl", TEXT).json["mimetype"] == "application/vnd.fluent"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(".x:text/plain,text/html", id="comma-list"),
        pytest.param(".x:text/*", id="range"),
        pytest.param(".x:text/pl ain", id="space"),
    ],
)
def test_a_mimetypes_setting_that_is_no_media_type_stops_start_up(storage_root, value):
    with pytest.raises(ConfigurationError, match="kinto.attachment.mimetypes"):
        parse_settings(
            {"kinto.attachment.base_path": str(storage_root), "kinto.attachment.mimetypes": value}
        )


def test_an_operators_active_type_stays_their_choice(storage_root, caplog):
    app = build_app(storage_root, extensions="any", mimetypes=".page:Text/HTML")
    uploads = Uploads(app, storage_root)
    assert uploads.upload("r1", "home.page", b"<p>hi</p>").json["mimetype"] == "text/html"
    assert any("browsers render or run" in record.message for record in caplog.records)
