"""A large record write is authorized before its body is read: a refused caller costs
the server no memory, an allowed one is served as before."""

from __future__ import annotations

import io
import json

import pytest
from webob import Request

from kinto_attachment_mw.writes.verdict_first import LARGE_BODY

from ..helpers.kinto_apps import ALICE, RECORDS, auth

pytestmark = pytest.mark.unit


class CountingInput(io.BytesIO):
    def __init__(self, body: bytes):
        super().__init__(body)
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        chunk = super().readline(size)
        self.read_bytes += len(chunk)
        return chunk


def large_write(uploads, method: str, path: str, headers: dict, chunked: bool = False):
    body = json.dumps({"data": {"attachment": None, "padding": "x" * (LARGE_BODY + 10)}})
    request = Request.blank(path, method=method, headers=headers)
    request.content_type = "application/json"
    stream = CountingInput(body.encode())
    request.environ["wsgi.input"] = stream
    if chunked:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        request.environ["CONTENT_LENGTH"] = str(len(body))
    return request.get_response(uploads.app.app), stream


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("who,status", [({}, 401), (auth("bob"), 403)], ids=["anonymous", "bob"])
def test_a_refused_large_write_is_answered_unread(uploads, method, who, status):
    meta = uploads.upload("r1", "a.txt", b"a").json
    response, stream = large_write(uploads, method, f"{RECORDS}/r1", who)
    assert response.status_int == status
    assert response.json["code"] == status
    assert stream.read_bytes == 0
    assert uploads.record("r1")["data"]["attachment"] == meta


def test_a_refused_large_create_is_answered_unread(uploads):
    response, stream = large_write(uploads, "POST", RECORDS, auth("bob"))
    assert response.status_int == 403
    assert stream.read_bytes == 0


def test_a_chunked_body_is_authorized_first_too(uploads):
    response, stream = large_write(uploads, "PUT", f"{RECORDS}/r1", {}, chunked=True)
    assert response.status_int == 401
    assert stream.read_bytes == 0


@pytest.mark.parametrize("method,path", [("PUT", "/r1"), ("PATCH", "/r1"), ("POST", "")])
def test_an_allowed_large_write_is_served_as_before(uploads, method, path):
    meta = uploads.upload("r1", "a.txt", b"a").json
    response, _ = large_write(uploads, method, f"{RECORDS}{path}", ALICE)
    assert response.status_int in (200, 201), response.body[:300]
    record_id = response.json["data"]["id"]
    assert uploads.record(record_id)["data"]["attachment"] is None
    # r1's file goes with its attachment; a new record had none
    assert uploads.files() == (set() if path else {meta["location"]})
