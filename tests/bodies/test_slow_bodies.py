"""Slow bodies under a server that gives the middleware no socket (webtest here, waitress
or a paste pipeline elsewhere): each read is accounted when it returns, and a body that
missed its rate or its deadline is answered 408 in Kinto's envelope, whoever read it.
The clock is moved by the body's reads, never waited for."""

from __future__ import annotations

import json

import pytest
from webob import Request

from kinto_attachment_mw.bodies import watch

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads
from ..helpers.live_server import BOUNDARY

pytestmark = pytest.mark.unit

SLOWER = "The request body arrived slower than 1024 bytes per second: send it again."
LATE = "The request body did not arrive within 60 seconds: send it again."


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowStream:
    """``body`` arriving at ``rate`` bytes per second of ``clock``; a read returns what
    it asks for, as gunicorn's does, once that has arrived."""

    def __init__(self, body: bytes, rate: float, clock: Clock):
        self.body, self.rate, self.clock = body, rate, clock

    def read(self, size: int = -1) -> bytes:
        size = len(self.body) if size is None or size < 0 else size
        data, self.body = self.body[:size], self.body[size:]
        self.clock.now += len(data) / self.rate
        return data


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(watch, "clock", clock)
    return clock


def upload_body(size: int) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="attachment"; filename="slow.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + b"x" * size
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def send(app, method: str, path: str, body: bytes, stream, content_type="application/json"):
    request = Request.blank(path, method=method, headers={**ALICE, "Origin": "http://a.org"})
    request.content_type = content_type
    request.content_length = len(body)
    request.environ["wsgi.input"] = stream
    request.environ.pop("webob.is_body_seekable", None)
    return request.get_response(app.app)


MiB = 1024 * 1024
#: Bodies that Kinto (WebOb) reads 64 KiB at a time, and an upload the middleware reads
#: 1 MiB at a time: under such a server, a read that returns the whole body is too late
#: to refuse anything, one that returns part of it is accounted.
RECORD = json.dumps({"data": {"title": "x" * 200_000}}).encode()
BATCH = json.dumps({"requests": [{"method": "GET", "path": "/buckets"}], "x": "y" * 200_000})
UPLOAD = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        pytest.param("POST", "/v1/batch", BATCH.encode(), "application/json", id="batch"),
        pytest.param("PUT", "/v1/buckets/other", RECORD, "application/json", id="kinto-reads"),
        pytest.param(
            "POST", f"{RECORDS}/r1/attachment", upload_body(3 * MiB // 2), UPLOAD, id="upload"
        ),
    ],
)
def test_a_body_slower_than_the_rate_is_answered_408(app, clock, method, path, body, content_type):
    Uploads(app)
    stream = SlowStream(body, rate=1000, clock=clock)
    response = send(app, method, path, body, stream, content_type)
    assert response.status_code == 408, response.text
    assert response.json == {
        "code": 408,
        "errno": 999,
        "error": "Request Timeout",
        "message": SLOWER,
    }
    assert "Access-Control-Allow-Origin" in response.headers
    assert stream.body  # not read to the end
    assert app.get(f"{RECORDS}/r1", headers=ALICE, expect_errors=True).status_code == 404
    assert app.get("/v1/buckets/other", headers=ALICE, expect_errors=True).status_code == 403


def test_a_capped_body_has_a_deadline_an_upload_only_the_rate(app, clock, storage_root):
    """Just above the rate: a 200 KB body Kinto reads misses the 60 s deadline (its
    first 64 KiB take 62 s), a 1.5 MiB upload (25 min) is stored; at 20 KB/s, the body
    reaches Kinto in time (a small one: WebOb leaves a large one in a temporary file that
    only the garbage collector closes)."""
    Uploads(app)
    late = send(app, "PUT", "/v1/buckets/other", RECORD, SlowStream(RECORD, 1050, clock))
    assert (late.status_code, late.json["message"]) == (408, LATE)
    small = json.dumps({"data": {"title": "x" * 9000}}).encode()
    in_time = send(app, "PUT", "/v1/buckets/other", small, SlowStream(small, 20_000, clock))
    assert in_time.status_code == 201, in_time.text

    body = upload_body(3 * MiB // 2)
    stored = send(
        app, "POST", f"{RECORDS}/r2/attachment", body, SlowStream(body, 1050, clock), UPLOAD
    )
    assert stored.status_code == 201, stored.text
    assert stored.json["size"] == 3 * MiB // 2


def send_chunked(app, method: str, path: str, stream):
    """A body of unknown length, as gunicorn hands a chunked one."""
    request = Request.blank(path, method=method, headers={**ALICE, "Origin": "http://a.org"})
    request.content_type = "application/json"
    request.environ.pop("CONTENT_LENGTH", None)
    request.environ.pop("webob.is_body_seekable", None)
    request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    request.environ["wsgi.input_terminated"] = True
    request.environ["wsgi.input"] = stream
    return request.get_response(app.app)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("PUT", f"{RECORDS}/r1/attachment", id="put-on-attachment"),
        pytest.param("POST", "/v1/buckets/b/attachment", id="not-a-record"),
        pytest.param("POST", "/v1/batch/attachment", id="batch-attachment"),
        pytest.param("POST", "/v1/attachment/uploads/x", id="post-uploads-segment"),
    ],
)
def test_a_capped_body_on_a_path_that_looks_like_an_upload_has_the_deadline(
    app, clock, method, path
):
    """Only a real upload route (a multipart POST on a record's attachment, a tus PATCH)
    goes without a deadline: a chunked body the cap reads whole on any other path, even
    one that ends like an upload's, misses it as every capped body does."""
    stream = SlowStream(RECORD, rate=1050, clock=clock)
    response = send_chunked(app, method, path, stream)
    assert (response.status_code, response.json["message"]) == (408, LATE), response.text
    assert stream.body  # cut before its end: the thread was let go at the deadline


def test_a_body_cut_while_kinto_reads_it_logs_no_error(app, clock, caplog):
    """Kinto answers a body cut for its slowness as an HTTP error, not as a crash of its
    own: no traceback logged at ERROR (which any client could otherwise cause at will)."""
    stream = SlowStream(RECORD, rate=1000, clock=clock)
    with caplog.at_level("WARNING"):
        response = send(app, "PUT", "/v1/buckets/other", RECORD, stream)
    assert (response.status_code, response.json["message"]) == (408, SLOWER)
    errors = [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]
    assert errors == [], [record.getMessage() for record in errors]
