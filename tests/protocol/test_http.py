"""The HTTP surface: methods, CORS, default bucket, pass-through of everything else."""

from __future__ import annotations

import kinto
import pytest
import webtest
from webob import Request

from kinto_attachment_mw import AttachmentMiddleware

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, auth, kinto_settings

pytestmark = pytest.mark.unit

URL = f"{RECORDS}/r1/attachment"


def test_other_methods_get_405(uploads, app):
    for method in ("put", "patch"):
        response = getattr(app, method)(URL, headers=ALICE, status=405)
        assert response.headers["Allow"] == "GET, HEAD, POST, DELETE, OPTIONS"
        if method != "head":
            assert response.json == {
                "code": 405,
                "errno": 115,
                "error": "Method Not Allowed",
                "message": "Method not allowed on this endpoint.",
            }


def test_preflight_answers_with_cors_headers(app):
    response = app.options(
        URL,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        status=200,
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,HEAD,POST,DELETE,OPTIONS"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.headers["Access-Control-Max-Age"] == "3600"


def test_preflight_without_request_method_is_400_like_kinto(app):
    response = app.options(URL, headers={"Origin": "https://a.example"}, status=400)
    assert response.json["errno"] == 107


def test_cors_headers_on_success_and_errors(uploads):
    origin = {"Origin": "https://app.example.com"}
    ok = uploads.upload("r1", headers={**ALICE, **origin})
    assert ok.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in ok.headers["Access-Control-Expose-Headers"]
    refused = uploads.upload("r1", headers=origin, status=401)
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    bad = uploads.app.post(
        URL, "x", headers={**ALICE, **origin, "Content-Type": "text/plain"}, status=400
    )
    assert bad.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_origins_setting_is_honoured(storage_root):
    settings = kinto_settings(storage_root)
    settings["kinto.cors_origins"] = "https://good.example"
    app = webtest.TestApp(AttachmentMiddleware(kinto.main({}, **settings), settings))
    good = app.options(
        URL, headers={"Origin": "https://good.example", "Access-Control-Request-Method": "POST"}
    )
    assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
    bad = app.options(
        URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in bad.headers


def test_path_without_version_prefix_is_handled(uploads):
    response = uploads.upload(path="/buckets/b/collections/c/records/r1/attachment")
    assert response.status_int == 201
    assert response.headers["Location"].endswith("/v1/buckets/b/collections/c/records/r1")


def test_trailing_slash_is_left_to_kinto(uploads, app):
    response = app.post(URL + "/", headers=ALICE, status=307)
    assert response.headers["Location"].endswith(URL)


def test_missing_collection_is_kinto_404(uploads):
    response = uploads.upload(
        path="/v1/buckets/b/collections/nope/records/r1/attachment", status=404
    )
    assert response.json["errno"] == 111
    assert uploads.files() == set()


def test_create_needs_record_create_on_collection(uploads, app):
    carol = auth("carol")
    carol_id = app.get("/v1/", headers=carol).json["user"]["id"]
    app.patch_json(
        "/v1/buckets/b/collections/c",
        {"permissions": {"record:create": [carol_id]}},
        headers=ALICE,
    )
    created = uploads.upload("carols", headers=carol)
    assert created.status_int == 201
    uploads.upload("r1")  # alice's record: carol may not replace it
    uploads.upload("r1", headers=carol, status=403)


def test_write_permission_on_record_allows_replace(uploads, app):
    dave = auth("dave")
    dave_id = app.get("/v1/", headers=dave).json["user"]["id"]
    uploads.upload("r1", permissions={"write": [dave_id]})
    assert uploads.upload("r1", content=b"by dave", headers=dave).status_int == 200
    app.delete(URL, headers=dave, status=204)


def test_delete_attachment_of_missing_record_is_404(uploads, app):
    response = app.delete(URL, headers=ALICE, status=404)
    assert response.json["errno"] == 110
    assert response.json["details"] == {"id": "r1", "resource_name": "record"}


def test_delete_attachment_of_record_without_one_sets_null(uploads, app):
    """As the plugin: afterwards ``record["attachment"] is None``, whatever it was."""
    app.put_json(f"{RECORDS}/r1", {"data": {"title": "x"}}, headers=ALICE)
    app.delete(URL, headers=ALICE, status=204)
    assert uploads.record("r1")["data"]["attachment"] is None


def test_delete_attachment_leaves_a_null_attachment_alone(uploads, app):
    app.put_json(f"{RECORDS}/r1", {"data": {"attachment": None}}, headers=ALICE)
    before = uploads.record("r1")["data"]["last_modified"]
    app.delete(URL, headers=ALICE, status=204)
    assert uploads.record("r1")["data"]["last_modified"] == before
    assert uploads.record("r1")["data"]["attachment"] is None


def test_default_bucket_uses_the_real_bucket_id(storage_root):
    app = webtest.TestApp(
        AttachmentMiddleware(
            kinto.main({}, **kinto_settings(storage_root)),
            kinto_settings(storage_root, folder="{bucket_id}/{collection_id}"),
        )
    )
    real_id = app.get("/v1/", headers=ALICE).json["user"]["bucket"]
    response = app.post(
        "/v1/buckets/default/collections/pix/records/r1/attachment",
        upload_files=[("attachment", "cat.png", b"\x89PNG")],
        headers=ALICE,
        status=201,
    )
    assert response.headers["Location"] == (
        f"http://localhost/v1/buckets/{real_id}/collections/pix/records/r1"
    )
    assert response.json["location"].startswith(f"{real_id}/pix/")
    record = app.get(f"/v1/buckets/{real_id}/collections/pix/records/r1", headers=ALICE).json
    assert record["data"]["attachment"] == response.json
    app.delete(
        "/v1/buckets/default/collections/pix/records/r1/attachment", headers=ALICE, status=204
    )
    assert Uploads.files(type("U", (), {"base_path": storage_root})()) == set()


def test_default_bucket_refuses_anonymous(storage_root):
    app = webtest.TestApp(
        AttachmentMiddleware(
            kinto.main({}, **kinto_settings(storage_root)), kinto_settings(storage_root)
        )
    )
    app.post(
        "/v1/buckets/default/collections/pix/records/r1/attachment",
        upload_files=[("attachment", "cat.png", b"x")],
        status=401,
    )


class CountingApp:
    def __init__(self, app):
        self.app = app
        self.seen = []

    def __call__(self, environ, start_response):
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ))
        return self.app(environ, start_response)


def test_other_requests_pass_straight_through(storage_root):
    settings = kinto_settings(storage_root)
    counting = CountingApp(kinto.main({}, **settings))
    app = webtest.TestApp(AttachmentMiddleware(counting, settings))
    app.put_json("/v1/buckets/b", {}, headers=ALICE)
    counting.seen.clear()
    body = b'{"data": {"x": 1}}'
    direct = Request.blank(
        "/v1/buckets/b/collections/c", method="PUT", body=body, content_type="application/json"
    )
    direct.headers.update(ALICE)
    original_input = direct.environ["wsgi.input"]
    assert direct.get_response(app.app).status_int == 201
    app.get("/v1/buckets/b/collections/c/records", headers=ALICE)
    app.get("/v1/buckets/b/collections/attachment", headers=ALICE, status=404)
    assert [(m, p) for m, p, _ in counting.seen] == [
        ("PUT", "/v1/buckets/b/collections/c"),
        ("GET", "/v1/buckets/b/collections/c/records"),
        ("GET", "/v1/buckets/b/collections/attachment"),
    ]
    environ = counting.seen[0][2]
    assert environ is direct.environ  # the same environ, not a copy
    assert environ["wsgi.input"] is original_input
    assert not any(key.startswith("kinto_attachment_mw") for key in environ)


def test_upload_costs_two_internal_calls(storage_root):
    settings = kinto_settings(storage_root)
    counting = CountingApp(kinto.main({}, **settings))
    uploads = Uploads(webtest.TestApp(AttachmentMiddleware(counting, settings)), storage_root)
    counting.seen.clear()
    uploads.upload("r1")
    assert [m for m, _, _ in counting.seen] == ["PUT", "PUT"]  # probe, create
    counting.seen.clear()
    uploads.upload("r1")
    assert [m for m, _, _ in counting.seen] == ["PUT", "PATCH"]  # probe, update


def test_registry_is_reexposed(storage_root):
    settings = kinto_settings(storage_root)
    kinto_app = kinto.main({}, **settings)
    assert AttachmentMiddleware(kinto_app, settings).registry is kinto_app.registry


def test_client_preconditions_are_honoured_before_reading(uploads, app):
    meta = uploads.upload("r1").json
    current = f'"{uploads.record("r1")["data"]["last_modified"]}"'
    stale = uploads.upload("r1", headers={**ALICE, "If-Match": '"123"'}, status=412)
    assert stale.json["errno"] == 114
    assert stale.json["details"]["existing"]["attachment"] == meta
    uploads.upload("r1", headers={**ALICE, "If-None-Match": "*"}, status=412)
    uploads.upload("r2", headers={**ALICE, "If-Match": "*"}, status=412)
    app.delete(URL, headers={**ALICE, "If-Match": '"123"'}, status=412)
    assert uploads.files() == {meta["location"]}
    replaced = uploads.upload("r1", content=b"new", headers={**ALICE, "If-Match": current})
    assert replaced.status_int == 200
    assert uploads.upload("r3", headers={**ALICE, "If-None-Match": "*"}).status_int == 201


def test_client_precondition_values_follow_kinto(uploads, app):
    """Kinto 26.5's rules: quoted integers compared as numbers, "0" is no precondition,
    a quoted If-None-Match is ignored on writes, a missing record is 404 before 412."""
    uploads.upload("r1")
    bad = uploads.upload("r1", headers={**ALICE, "If-Match": "123"}, status=400)
    assert bad.json["errno"] == 107
    assert "If-Match" in bad.json["message"]
    assert uploads.upload("r1", headers={**ALICE, "If-Match": '"0"'}).status_int == 200
    timestamp = uploads.record("r1")["data"]["last_modified"]
    padded = f'"0{timestamp}"'
    assert uploads.upload("r1", headers={**ALICE, "If-Match": padded}).status_int == 200
    timestamp = uploads.record("r1")["data"]["last_modified"]
    quoted = f'"{timestamp}"'
    assert uploads.upload("r1", headers={**ALICE, "If-None-Match": quoted}).status_int == 200
    stale = uploads.upload("r1", headers={**ALICE, "If-Match": quoted}, status=412)
    assert stale.headers["ETag"] == f'"{uploads.record("r1")["data"]["last_modified"]}"'
    missing = uploads.upload("nope", headers={**ALICE, "If-Match": quoted}, status=412)
    assert missing.headers["ETag"]  # the collection's timestamp, as Kinto gives it
    gone = app.delete(f"{RECORDS}/nope/attachment", headers={**ALICE, "If-Match": "*"}, status=404)
    assert gone.json["errno"] == 110
