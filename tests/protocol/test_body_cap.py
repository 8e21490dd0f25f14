"""Bodies that cannot be uploads are capped at ``max_request_body_bytes`` before they are
read, on every route (those the middleware passes through untouched included); uploads
are not. Also: batch sub-request paths that are not ASCII, and a batch cut short."""

from __future__ import annotations

import json

import pytest
from webob import Request

from ..helpers.kinto_apps import ALICE, RECORDS, build_app
from ..writes.test_verdict_first import CountingInput

pytestmark = pytest.mark.unit

CAP = 64 * 1024
ROUTES = [
    ("POST", "/v1/batch"),
    ("POST", "/v1/__flush__"),
    ("PUT", "/v1/buckets/b"),
    ("PATCH", "/v1/buckets/b/collections/c"),
    ("POST", "/v1/buckets/b/collections"),
    ("PUT", f"{RECORDS}/r1"),
    ("POST", RECORDS),
    ("DELETE", "/v1/buckets/b/collections"),
    ("PUT", "/v1/accounts/someone"),
    ("GET", "/v1/"),
]


@pytest.fixture
def capped(storage_root):
    return build_app(storage_root, max_request_body_bytes=str(CAP)).app


def send(app, method: str, path: str, body: bytes, chunked: bool, headers=None):
    request = Request.blank(path, method=method, headers={**ALICE, **(headers or {})})
    request.content_type = "application/json"
    stream = CountingInput(body)
    request.environ["wsgi.input"] = stream
    if chunked:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        request.environ["wsgi.input_terminated"] = True  # as gunicorn says
    else:
        request.environ["CONTENT_LENGTH"] = str(len(body))
    return request.get_response(app), stream


@pytest.mark.parametrize("spelled", [" {}", "{}\t", "0{}"], ids=["space", "tab", "zero"])
def test_a_length_spelled_oddly_is_read_as_its_number(capped, spelled):
    """Every reader of the length reads the same number: one written with spaces around
    it or a leading zero is capped as the number it spells, not taken for no length."""
    body = json.dumps({"data": {"padding": "x" * CAP}}).encode()
    request = Request.blank("/v1/batch", method="POST", headers=ALICE)
    request.content_type = "application/json"
    stream = CountingInput(body)
    request.environ["wsgi.input"] = stream
    request.environ["CONTENT_LENGTH"] = spelled.format(len(body))
    response = request.get_response(capped)
    assert response.status_int == 413
    assert stream.read_bytes == 0


@pytest.mark.parametrize("spelled", ["²", "+12", "1_0", "12 13", "-1", "0x10"])
def test_a_length_that_is_no_whole_number_is_a_400(capped, spelled):
    request = Request.blank("/v1/batch", method="POST", headers=ALICE)
    request.environ["wsgi.input"] = CountingInput(b"{}")
    request.environ["CONTENT_LENGTH"] = spelled
    response = request.get_response(capped)
    assert response.status_int == 400
    assert response.json["message"] == "Invalid Content-Length header"


@pytest.mark.parametrize("method, path", ROUTES)
def test_a_body_over_the_cap_is_refused_unread(capped, method, path):
    body = json.dumps({"data": {"padding": "x" * CAP}}).encode()
    response, stream = send(capped, method, path, body, chunked=False)
    assert response.status_int == 413
    assert response.json["errno"] == 113
    assert str(CAP) in response.json["message"]
    assert stream.read_bytes == 0


@pytest.mark.parametrize("method, path", [route for route in ROUTES if "records" not in route[1]])
def test_a_chunked_body_is_cut_off_at_the_cap(capped, method, path):
    body = json.dumps({"data": {"padding": "x" * 4 * CAP}}).encode()
    response, stream = send(capped, method, path, body, chunked=True)
    assert response.status_int == 413
    assert stream.read_bytes <= CAP + 64 * 1024


def test_a_chunked_record_write_over_the_cap_is_refused_while_read(capped):
    body = json.dumps({"data": {"padding": "x" * 4 * CAP}}).encode()
    Request.blank("/v1/buckets/b", method="PUT", headers=ALICE).get_response(capped)
    Request.blank("/v1/buckets/b/collections/c", method="PUT", headers=ALICE).get_response(capped)
    response, stream = send(capped, "PUT", f"{RECORDS}/r1", body, chunked=True)
    assert response.status_int == 413
    assert stream.read_bytes <= CAP + 1


def test_a_chunked_body_up_to_the_cap_is_served_one_byte_more_is_not(capped):
    body = json.dumps({"data": {"title": "t"}}).encode()
    body += b" " * (CAP - len(body))
    response, _ = send(capped, "PUT", "/v1/buckets/b", body, chunked=True)
    assert response.status_int == 201
    assert response.json["data"]["title"] == "t"
    response, _ = send(capped, "PUT", "/v1/buckets/b", body + b" ", chunked=True)
    assert response.status_int == 413


def test_uploads_are_not_capped_their_record_writes_are(storage_root):
    app = build_app(storage_root, max_request_body_bytes=str(CAP))
    app.put_json("/v1/buckets/b", {}, headers=ALICE)
    app.put_json("/v1/buckets/b/collections/c", {}, headers=ALICE)
    content = b"y" * (2 * CAP)
    app.put_json(f"{RECORDS}/r1", {"data": {"x": "y" * CAP}}, headers=ALICE, status=413)
    response = app.post(
        f"{RECORDS}/r1/attachment",
        upload_files=[("attachment", "big.txt", content)],
        headers=ALICE,
    )
    assert response.json["size"] == len(content)


@pytest.mark.parametrize(
    "record_id", ["b14%EF%BC%8F", "b14%ef%bc%8f", "b14%FF", "b14%80", "b14é", "b14／", "%E2%80%8B"]
)
@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET"])
def test_a_batch_path_that_is_not_ascii_is_a_400(uploads, record_id, method):
    sub = {"method": method, "path": f"/buckets/b/collections/c/records/{record_id}"}
    if method == "PUT":
        sub["body"] = {"data": {}}
    response = uploads.app.post_json(
        "/v1/batch", {"requests": [sub]}, headers=ALICE, expect_errors=True
    )
    assert response.status_int == 400
    assert response.json["details"][0]["name"] == "requests.0.path"
    assert "ASCII" in response.json["message"]


def test_a_batch_body_shorter_than_its_length_is_a_400(uploads):
    body = json.dumps({"requests": [{"method": "GET", "path": "/buckets/b"}]}).encode()
    request = Request.blank("/v1/batch", method="POST", headers=ALICE, body=body)
    request.environ["CONTENT_LENGTH"] = str(len(body) + 100)
    del request.environ["webob.is_body_seekable"]  # a client's stream, as a server gives it
    response = request.get_response(uploads.app.app)
    assert response.status_int == 400
    assert "ended before its Content-Length" in response.json["message"]
