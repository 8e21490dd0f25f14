"""With serve_path, stored files are served so that locations resolve without nginx."""

from __future__ import annotations

import pytest

from ..helpers.kinto_apps import ALICE, Uploads, build_app

pytestmark = pytest.mark.unit

BASE_URL = "http://localhost/attachments/"


@pytest.fixture
def served(storage_root):
    app = build_app(
        storage_root,
        base_url=BASE_URL,
        serve_path="/attachments",
        mimetypes=".ftl:application/vnd.fluent",
        extensions="any",
    )
    return Uploads(app, storage_root)


def path_of(location: str) -> str:
    assert location.startswith(BASE_URL)
    return location[len("http://localhost") :]


def test_get_serves_the_bytes_with_type_and_etag(served):
    content = b"0123456789" * 1000
    meta = served.upload("r1", "data.json", content).json
    response = served.app.get(path_of(meta["location"]))
    assert response.body == content
    assert response.content_type == "application/json"
    assert response.headers["Content-Length"] == str(len(content))
    etag = response.headers["ETag"]
    assert etag
    served.app.get(path_of(meta["location"]), headers={"If-None-Match": etag}, status=304)


def test_configured_mimetype_and_head(served):
    meta = served.upload("r1", "strings.ftl", b"hello = Hello").json
    response = served.app.head(path_of(meta["location"]))
    assert response.content_type == "application/vnd.fluent"
    assert response.headers["Content-Length"] == "13"
    assert response.body == b""


def test_range_request(served):
    meta = served.upload("r1", "a.txt", b"abcdefghij").json
    response = served.app.get(path_of(meta["location"]), headers={"Range": "bytes=2-5"}, status=206)
    assert response.body == b"cdef"
    assert response.headers["Content-Range"] == "bytes 2-5/10"


def test_gzip_files_are_not_served_with_content_encoding(served):
    meta = served.upload("r1", "a.json.gz", b"\x1f\x8b fake").json
    response = served.app.get(path_of(meta["location"]))
    assert "Content-Encoding" not in response.headers
    assert response.content_type == "application/x-gzip"


@pytest.mark.parametrize(
    "path",
    [
        "/attachments/../etc/passwd",
        "/attachments/%2e%2e/%2e%2e/etc/passwd",
        "/attachments//etc/passwd",
        "/attachments/nope.txt",
        "/attachments/",
        "/attachments/.upload-123",
        "/attachments/a/%00.txt",
    ],
)
def test_nothing_outside_stored_files_is_served(served, path):
    served.upload("r1", "a.txt", b"x")
    response = served.app.get(path, status=404, expect_errors=True)
    assert response.json["errno"] == 111


def test_only_get_and_head(served):
    meta = served.upload("r1", "a.txt", b"x").json
    served.app.delete(path_of(meta["location"]), headers=ALICE, status=405)


def test_without_serve_path_nothing_is_served(uploads, app):
    meta = uploads.upload("r1", "a.txt", b"x").json
    response = app.get("/attachments/" + meta["location"], status="*")
    assert response.status_int in (307, 404)  # Kinto's redirect to /v1/..., then 404
    assert response.body != b"x"


def test_served_files_cannot_run_scripts_on_kintos_origin(served):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    meta = served.upload("r1", "x.svg", svg).json
    response = served.app.get(path_of(meta["location"]))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_range_edge_cases(served):
    meta = served.upload("r1", "a.txt", b"abcdefghij").json
    url = path_of(meta["location"])
    full = served.app.get(url, headers={"Range": "bytes=2-5", "If-Range": '"other"'})
    assert full.status_int == 200 and full.body == b"abcdefghij"
    tail = served.app.get(url, headers={"Range": "bytes=-3"}, status=206)
    assert tail.body == b"hij"
    refused = served.app.get(url, headers={"Range": "bytes=50-60"}, status=416)
    assert refused.headers["Content-Range"] == "bytes */10"
    modified = full.headers["Last-Modified"]
    served.app.get(url, headers={"If-Modified-Since": modified}, status=304)


def test_file_removed_while_being_served_is_still_sent_whole(served, storage_root):
    from webob import Request

    meta = served.upload("r1", "a.txt", b"still here").json
    request = Request.blank(path_of(meta["location"]))
    status, headers, body_iter = None, None, None

    def start_response(s, h, exc_info=None):
        nonlocal status, headers
        status, headers = s, h

    body_iter = served.app.app(request.environ, start_response)
    (storage_root / meta["location"][len(BASE_URL) :]).unlink()
    try:
        assert b"".join(body_iter) == b"still here"
    finally:
        body_iter.close()
    assert status.startswith("200")
    served.app.get(path_of(meta["location"]), status=404)
