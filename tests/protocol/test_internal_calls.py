"""How many requests an upload sends into Kinto: each is a full pass through Kinto's
authentication, permissions and storage, so the count is part of an upload's cost."""

from __future__ import annotations

import kinto
import pytest
import webtest

from kinto_attachment_mw import AttachmentMiddleware

from ..helpers.kinto_apps import ALICE, RECORDS, kinto_settings

pytestmark = pytest.mark.unit


class Recorder:
    """Wraps Kinto and notes each request the middleware sends into it."""

    def __init__(self, app):
        self.app = app
        self.calls: list[str] = []

    def __call__(self, environ, start_response):
        self.calls.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return self.app(environ, start_response)


def build(tmp_path):
    settings = kinto_settings(tmp_path)
    recorder = Recorder(kinto.main({}, **settings))
    app = webtest.TestApp(AttachmentMiddleware(recorder, settings))
    app.put_json("/v1/buckets/b", {}, headers=ALICE)
    app.put_json("/v1/buckets/b/collections/c", {}, headers=ALICE)
    recorder.calls.clear()
    return app, recorder


def post(app, url, content=b"hello"):
    return app.post(url, upload_files=[("attachment", "a.txt", content)], headers=ALICE)


def test_an_upload_costs_a_probe_and_a_write(tmp_path):
    app, recorder = build(tmp_path)
    record = f"{RECORDS}/r1"
    assert post(app, f"{record}/attachment").status_int == 201
    assert recorder.calls == [f"PUT {record}", f"PUT {record}"]  # probe, create
    recorder.calls.clear()
    assert post(app, f"{record}/attachment", b"replaced").status_int == 200
    assert recorder.calls == [f"PUT {record}", f"PATCH {record}"]  # probe, update


def test_the_default_bucket_costs_one_more_call(tmp_path):
    app, recorder = build(tmp_path)
    app.put_json("/v1/buckets/default/collections/c", {}, headers=ALICE)
    recorder.calls.clear()
    assert post(app, "/v1/buckets/default/collections/c/records/r1/attachment").status_int == 201
    methods = [call.split()[0] for call in recorder.calls]
    assert methods == ["PUT", "GET", "PUT"]  # probe, who am I (the bucket id), create
    assert recorder.calls[1] == "GET /v1/"
