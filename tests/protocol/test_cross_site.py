"""Writes on attachment URLs that another site makes a signed-in browser send (a form
post, a no-cors fetch, an Origin Kinto's cors_origins does not allow) are refused with
403 before a byte of the body is read; browsers' own CORS requests and clients outside
browsers are not affected."""

from __future__ import annotations

import base64

import pytest
import webtest
from webob import Request

from kinto_attachment_mw import AttachmentMiddleware

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, fresh_kinto, kinto_settings

pytestmark = pytest.mark.unit

URL = f"{RECORDS}/r1/attachment"
NAVIGATION = {
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Dest": "document",
}

#: (headers, cors_origins, what the refusal says)
REFUSED = [
    pytest.param(NAVIGATION, "*", "navigation", id="form-from-another-site"),
    pytest.param(
        {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"},
        "*",
        "navigation",
        id="form-on-the-api-origin",
    ),
    pytest.param(
        {"Sec-Fetch-Mode": "nested-navigate", "Origin": "https://evil.example"},
        "*",
        "navigation",
        id="form-in-a-frame",
    ),
    pytest.param(
        {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"},
        "*",
        "without CORS",
        id="no-cors-fetch-from-another-site",
    ),
    pytest.param(
        {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-site"},
        "*",
        "without CORS",
        id="no-cors-fetch-from-a-sibling-domain",
    ),
    pytest.param({"Origin": "null"}, "*", "Origin: null", id="opaque-origin"),
    pytest.param(
        {
            "Origin": "https://evil.example",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Site": "cross-site",
        },
        "https://app.example",
        "Origin https://evil.example is not allowed",
        id="origin-not-in-cors-origins",
    ),
    pytest.param(
        {"Origin": "https://example.com.evil.example"},
        "https://*.example.com",
        "is not allowed",
        id="origin-outside-a-pattern",
    ),
    pytest.param(
        {"Origin": "https://evil.example"},
        "https://app.example",
        "Origin https://evil.example is not allowed",
        id="origin-not-in-cors-origins-older-browser",
    ),
    pytest.param(
        {"Origin": "http://localhost", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"},
        "https://app.example",
        "Origin http://localhost is not allowed",
        id="own-origin-unlisted-as-kinto-refuses-it",
    ),
]

ALLOWED = [
    pytest.param({}, "https://app.example", id="no-browser"),
    pytest.param(
        {"Origin": "https://app.example.com", "Sec-Fetch-Mode": "cors"},
        "https://*.example.com",
        id="origin-matching-a-pattern",
    ),
    pytest.param(
        {"Origin": "https://app.example", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"},
        "https://app.example",
        id="listed-origin",
    ),
    pytest.param(
        {"Origin": "https://any.example", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"},
        "*",
        id="any-origin-with-star",
    ),
]


class Unreadable:
    """A body that must not be read."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def app_with(storage_root, tmp_path, cors_origins: str) -> webtest.TestApp:
    attachment = {"resumable.spool_path": str(tmp_path / "spool"), "extensions": "any"}
    settings = kinto_settings(storage_root, **attachment)
    settings["kinto.cors_origins"] = cors_origins
    return webtest.TestApp(AttachmentMiddleware(fresh_kinto(settings), settings))


def call(
    app: webtest.TestApp, method: str, path: str, headers: dict, content_type: str | None = None
):
    """``method`` on ``path`` straight through the middleware, with a body never read."""
    request = Request.blank(path, method=method, headers={**ALICE, **headers})
    request.environ["wsgi.input"] = Unreadable()
    request.environ["CONTENT_LENGTH"] = "1000"
    if content_type:
        request.environ["CONTENT_TYPE"] = content_type
    return request.get_response(app.app)


def writes(app: webtest.TestApp) -> list[tuple[str, str, dict, str | None]]:
    """Every write on an attachment URL: multipart upload, tus creation, tus PATCH (and
    its POST override), tus termination, removal."""
    uploads = Uploads(app)
    uploads.upload("r1", "a.txt", b"first")
    created = app.post(
        URL,
        headers={
            **ALICE,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "5",
            "Upload-Metadata": "filename " + base64.b64encode(b"b.txt").decode(),
        },
        status=201,
    )
    upload = created.headers["Location"].removeprefix("http://localhost")
    tus = {"Tus-Resumable": "1.0.0"}
    stream = "application/offset+octet-stream"
    return [
        ("POST", URL, {}, "multipart/form-data; boundary=x"),
        ("POST", URL, {**tus, "Upload-Length": "5", "Upload-Metadata": "filename Yi50eHQ="}, None),
        ("PATCH", upload, {**tus, "Upload-Offset": "0"}, stream),
        ("POST", upload, {**tus, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"}, stream),
        ("DELETE", upload, tus, None),
        ("DELETE", URL, {}, None),
    ]


@pytest.mark.parametrize("headers,cors_origins,reason", REFUSED)
def test_writes_another_site_makes_a_browser_send_are_refused_unread(
    storage_root, tmp_path, headers, cors_origins, reason
):
    app = app_with(storage_root, tmp_path, cors_origins)
    for method, path, own_headers, content_type in writes(app):
        response = call(app, method, path, {**own_headers, **headers}, content_type)
        assert response.status_int == 403, (method, path, response.text)
        body = response.json
        assert (body["code"], body["errno"], body["error"]) == (403, 121, "Forbidden")
        assert reason in body["message"]
    record = app.get(f"{RECORDS}/r1", headers=ALICE).json["data"]
    assert record["attachment"]["filename"] == "a.txt"  # neither replaced nor removed


@pytest.mark.parametrize("headers,cors_origins", ALLOWED)
def test_cors_requests_and_clients_outside_browsers_still_upload(
    storage_root, tmp_path, headers, cors_origins
):
    app = app_with(storage_root, tmp_path, cors_origins)
    uploads = Uploads(app)
    meta = uploads.upload("r1", "a.txt", b"hello", headers={**ALICE, **headers}).json
    assert meta["filename"] == "a.txt"
    sent_as_form = {**ALICE, **headers, **NAVIGATION}
    uploads.upload("r1", "b.txt", b"other", headers=sent_as_form, status=403)
    app.delete(URL, headers=sent_as_form, status=403)
    app.delete(URL, headers={**ALICE, **headers}, status=204)


def test_a_refusal_carries_cors_headers_for_the_page_to_read_it(storage_root, tmp_path):
    app = app_with(storage_root, tmp_path, "*")
    response = call(app, "POST", URL, {"Origin": "null"}, "multipart/form-data; boundary=x")
    assert response.status_int == 403
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    Uploads(app).upload("r1", "a.txt", b"hello")
    app.get(URL, headers={**ALICE, **NAVIGATION}, status=200)  # reads are not refused
