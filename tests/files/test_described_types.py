"""The ``mimetype`` a client writes into a record's ``attachment`` (a copy through PUT,
PATCH or a batch): no control characters, bounded, and no type browsers render or run
unless the file was stored with it."""

from __future__ import annotations

import pytest

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>'

#: Types a PNG's attachment may not be given.
REFUSED = [
    pytest.param("text/html", id="html"),
    pytest.param("text/html; charset=utf-8", id="html-charset"),
    pytest.param("TEXT/HTML", id="html-upper"),
    pytest.param("image/svg+xml;x=1", id="svg-parameter"),
    pytest.param("application/foo+xml", id="xml-suffix"),
    pytest.param("application/vnd.wap.xhtml+xml", id="wap-xhtml"),
    pytest.param("text/xsl", id="xsl"),
    pytest.param("multipart/x-mixed-replace", id="mixed-replace"),
    pytest.param("text/cache-manifest", id="cache-manifest"),
    pytest.param("application/x-javascript", id="javascript"),
    pytest.param("application/pdf", id="pdf"),
    pytest.param("image/png\r\nX-Injected: 1", id="crlf"),
    pytest.param("image/png\n", id="lf"),
    pytest.param("image/png\x00", id="nul"),
    pytest.param("image/png;x=" + "a" * 300, id="too-long"),
    pytest.param("text/plain,text/html", id="comma-list"),
    pytest.param(["image/png"], id="not-a-string"),
]


@pytest.fixture
def uploads(storage_app) -> Uploads:
    """On local storage, then on GCS (a file's type kept in its object's metadata)."""
    uploads = Uploads(storage_app())
    uploads.app.put_json("/v1/buckets/b/collections/review", {}, headers=ALICE)
    return uploads


@pytest.fixture
def png(uploads) -> dict:
    return uploads.upload("r1", "photo.png", PNG).json


def assert_refused(response) -> None:
    assert response.status_int == 400
    assert response.json["errno"] == 107
    assert response.json["message"].startswith("attachment.mimetype: ")
    assert response.json["details"][0]["name"] == "attachment"


def copy_paths(uploads, attachment: dict, status):
    """The attachment written by each path a client has: PUT, PATCH of its own record,
    and a batch."""
    yield uploads.app.put_json(
        f"{RECORDS}/copy", {"data": {"attachment": attachment}}, headers=ALICE, status=status
    )
    yield uploads.app.patch_json(
        f"{RECORDS}/r1", {"data": {"attachment": attachment}}, headers=ALICE, status=status
    )
    body = {"data": {"attachment": attachment}}
    yield uploads.app.post_json(
        "/v1/batch",
        {
            "requests": [
                {"method": "PUT", "path": "/buckets/b/collections/review/records/x", "body": body}
            ]
        },
        headers=ALICE,
        status=status,
    )


@pytest.mark.parametrize("mimetype", REFUSED)
def test_a_file_cannot_be_described_as_active_or_broken_content(uploads, png, mimetype):
    for response in copy_paths(uploads, {**png, "mimetype": mimetype}, status=400):
        assert_refused(response)
    assert uploads.record("r1")["data"]["attachment"]["mimetype"] == "image/png"
    uploads.record("copy", status=404)


def test_its_own_type_and_passive_ones_pass_an_active_one_does_not(uploads, png):
    for mimetype in ("image/png", "application/octet-stream", "image/png; charset=binary"):
        for response in copy_paths(uploads, {**png, "mimetype": mimetype}, status="2*"):
            if response.request.path == "/v1/batch":
                assert response.json["responses"][0]["status"] in (200, 201)
        assert uploads.record("copy")["data"]["attachment"]["mimetype"] == mimetype
    response = uploads.app.put_json(
        f"{RECORDS}/copy",
        {"data": {"attachment": {**png, "mimetype": "text/html"}}},
        headers=ALICE,
        status=400,
    )
    assert_refused(response)


def test_an_active_type_the_file_was_stored_with_may_be_copied(uploads):
    svg = uploads.upload("s1", "drawing.svg", SVG).json
    assert svg["mimetype"] == "image/svg+xml"
    for mimetype in ("image/svg+xml", "IMAGE/SVG+XML; charset=utf-8"):
        uploads.app.put_json(
            f"{RECORDS}/copy",
            {"data": {"attachment": {**svg, "mimetype": mimetype}}},
            headers=ALICE,
        )
    response = uploads.app.put_json(
        f"{RECORDS}/copy",
        {"data": {"attachment": {**svg, "mimetype": "text/html"}}},
        headers=ALICE,
        status=400,
    )
    assert_refused(response)


def test_a_plugin_files_own_type_is_its_names(uploads, png):
    uploads.plant_plugin_file("legacy.svg", SVG)
    attachment = {"location": "legacy.svg", "hash": "h", "size": len(SVG), "filename": "l.svg"}
    uploads.app.put_json(
        f"{RECORDS}/p1",
        {"data": {"attachment": {**attachment, "mimetype": "image/svg+xml"}}},
        headers=ALICE,
    )
    response = uploads.app.put_json(
        f"{RECORDS}/p2",
        {"data": {"attachment": {**attachment, "mimetype": "text/html"}}},
        headers=ALICE,
        status=400,
    )
    assert_refused(response)
