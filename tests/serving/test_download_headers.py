"""What a download's headers say, whichever way its bytes travel: ``nosniff`` and the
sandbox policy always, and never a value of the record's that is no media type."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from kinto_attachment_mw.serving.headers import SAFETY_HEADERS, media_type

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app, build_s3_app
from .test_private_copies import straight_to_kinto

URL = f"{RECORDS}/r1/attachment"

BAD_MIMETYPES = [
    pytest.param("text/html\r\nSet-Cookie: session=stolen", id="crlf"),
    pytest.param("text/html\nX-Frame-Options: ALLOW", id="lf"),
    pytest.param("text/" + "x" * 20_000, id="20000-characters"),
    pytest.param("text/plain\x00", id="nul"),
    pytest.param("text/plain\x7f", id="del"),
    pytest.param("html", id="no-subtype"),
    pytest.param("text/html; charset=\x1b", id="control-in-a-parameter"),
    pytest.param(["text/html"], id="not-a-string"),
]


def with_mimetype(app, mimetype: object) -> None:
    """r1's attachment says ``mimetype``, written as a path that checks nothing would."""
    uploads = Uploads(app)
    attachment = uploads.upload("r1", "page.txt", b"<script>alert(1)</script>").json
    body = {"data": {"attachment": {**attachment, "mimetype": mimetype}}}
    straight_to_kinto(app).patch_json(f"{RECORDS}/r1", body, headers=ALICE)


def assert_safe(answer) -> None:
    for name, value in SAFETY_HEADERS.items():
        assert answer.headers[name] == value, name


@pytest.mark.unit
@pytest.mark.parametrize("accel", [False, True], ids=["streamed", "x-accel"])
@pytest.mark.parametrize("mimetype", BAD_MIMETYPES)
def test_a_mimetype_that_is_no_media_type_is_served_as_bytes(storage_root, mimetype, accel):
    settings = {"download_accel_path": "/protected"} if accel else {}
    app = build_app(storage_root, **settings)
    with_mimetype(app, mimetype)
    for method in ("get", "head"):
        answer = getattr(app, method)(URL, headers=ALICE, status=200)
        assert answer.headers["Content-Type"] == "application/octet-stream"
        assert answer.headers["Content-Disposition"] == 'attachment; filename="page.txt"'
        assert_safe(answer)


@pytest.mark.unit
def test_media_types_are_kept_when_they_can_be_sent():
    for value in ("text/csv", "text/plain; charset=utf-8", 'application/x; a="b c"'):
        assert media_type(value) == value
    for value in (None, "", "text/", "/plain", "text/plain;", "a/b\r\n", "a/" + "b" * 300):
        assert media_type(value) == "application/octet-stream"


@pytest.mark.unit
def test_every_local_route_says_nosniff(storage_root):
    """Streamed (200, 206, 304, 416, HEAD), handed to nginx, and ``serve_path``."""
    app = build_app(
        storage_root,
        serve_path="/attachments",
        base_url="http://localhost/attachments/",
    )
    attachment = Uploads(app).upload("r1", "a.txt", b"abcdefghij").json
    etag = f'"{attachment["hash"]}"'
    public = urlsplit(attachment["location"]).path
    served = {
        "200": app.get(URL, headers=ALICE, status=200),
        "head": app.head(URL, headers=ALICE, status=200),
        "206": app.get(URL, headers={**ALICE, "Range": "bytes=2-4"}, status=206),
        "304": app.get(URL, headers={**ALICE, "If-None-Match": etag}, status=304),
        "416": app.get(URL, headers={**ALICE, "Range": "bytes=-0"}, status=416),
        "serve_path": app.get(public, status=200),
    }
    served["serve_path 304"] = app.get(
        public, headers={"If-None-Match": served["serve_path"].headers["ETag"]}, status=304
    )
    accel = build_app(storage_root, download_accel_path="/protected")  # Kinto emptied
    Uploads(accel).upload("r1", "a.txt", b"abcdefghij")
    served["x-accel"] = accel.get(URL, headers=ALICE, status=200)
    assert served["x-accel"].headers["X-Accel-Redirect"]
    for route, answer in served.items():
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", route
        assert answer.headers.get("Content-Security-Policy"), route


@pytest.mark.integration
def test_s3_redirects_say_nosniff_and_sign_a_safe_type(moto):
    """S3 lets a presigned URL set the answer's type and disposition, not other headers:
    the signed type is a media type, and the redirect itself says ``nosniff``."""
    bucket = moto.new_bucket()
    app = build_s3_app(bucket, moto.url)
    with_mimetype(app, "text/html\r\nSet-Cookie: session=stolen")
    answer = app.get(URL, headers=ALICE, status=307)
    assert_safe(answer)
    url = answer.headers["Location"]
    query = parse_qs(urlsplit(url).query)
    assert query["response-content-type"] == ["application/octet-stream"]
    fetched = requests.get(url, timeout=30)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="page.txt"'
