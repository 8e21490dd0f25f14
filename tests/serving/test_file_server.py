"""With serve_path, stored files are served so that locations resolve without nginx."""

from __future__ import annotations

import io
import sys

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


def raw_get(app, path: str, **headers: str) -> tuple[str, dict, bytes]:
    """The middleware's own WSGI answer, headers as it sends them (webtest would fill in
    a missing Content-Length)."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered.update(status=status, headers=dict(headers))

    body_iter = app.app(environ, start_response)
    try:
        body = b"".join(body_iter)
    finally:
        getattr(body_iter, "close", lambda: None)()
    return answered["status"], answered["headers"], body


def test_get_sends_its_content_length(served):
    meta = served.upload("r1", "a.txt", b"abcdefghij").json
    status, headers, body = raw_get(served.app, path_of(meta["location"]))
    assert (status, headers["Content-Length"], body) == ("200 OK", "10", b"abcdefghij")
    status, headers, body = raw_get(served.app, path_of(meta["location"]), Range="bytes=2-5")
    assert (status, headers["Content-Length"], body) == ("206 Partial Content", "4", b"cdef")


@pytest.mark.parametrize("path", ["/attachments/%ff.txt", "/attachments/a/\xff\xfe.txt"])
def test_a_path_that_is_not_utf8_is_a_404_in_kintos_envelope(served, path):
    wsgi_path = path.replace("%ff", "\xff")  # as the server decodes it: latin-1 text
    status, headers, body = raw_get(served.app, wsgi_path)
    assert status.startswith("404")
    assert headers["Content-Type"].startswith("application/json")
    assert b'"errno": 111' in body


@pytest.mark.parametrize(
    "header,status,content_range,body",
    [
        ("bytes=-0", 416, "bytes */10", b""),
        ("bytes=10-", 416, "bytes */10", b""),
        ("bytes=20-30", 416, "bytes */10", b""),
        ("bytes=-3", 206, "bytes 7-9/10", b"hij"),
        ("bytes=-30", 206, "bytes 0-9/10", b"abcdefghij"),
        ("bytes=8-", 206, "bytes 8-9/10", b"ij"),
        ("bytes=8-100", 206, "bytes 8-9/10", b"ij"),
        ("bytes=0-0", 206, "bytes 0-0/10", b"a"),
        ("bytes=0-1,4-5", 200, None, b"abcdefghij"),  # several: the whole file
        ("bytes=5-2", 200, None, b"abcdefghij"),  # invalid: ignored
        ("lines=1-2", 200, None, b"abcdefghij"),  # another unit: ignored
    ],
)
def test_ranges_as_rfc_9110_reads_them(served, header, status, content_range, body):
    meta = served.upload("r1", "a.txt", b"abcdefghij").json
    response = served.app.get(path_of(meta["location"]), headers={"Range": header}, status=status)
    assert response.headers.get("Content-Range") == content_range
    assert response.body == body


def test_if_none_match_star_is_a_304_for_an_existing_file(served):
    meta = served.upload("r1", "a.txt", b"abc").json
    served.app.get(path_of(meta["location"]), headers={"If-None-Match": "*"}, status=304)
    served.app.head(path_of(meta["location"]), headers={"If-None-Match": "*"}, status=304)
    served.app.get(path_of(meta["location"]), headers={"If-None-Match": '"other"'}, status=200)
    served.app.get("/attachments/missing.txt", headers={"If-None-Match": "*"}, status=404)
