"""``GET``/``HEAD .../records/{rid}/attachment``: the file for whoever may read the record
(Kinto decides, with the caller's credentials), nothing for anyone else."""

from __future__ import annotations

import gzip
import hashlib
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from kinto_attachment_mw.serving.downloads import content_disposition

from ..helpers.gcs import build_gcs_app
from ..helpers.kinto_apps import ALICE, Uploads, auth, build_app, build_s3_app

BOB, CAROL, DAVE = auth("bob"), auth("carol"), auth("dave")
CALLERS = {"anonymous": {}, "bob": BOB, "reader": CAROL, "writer": DAVE, "owner": ALICE}
CONTENT = b"private numbers\n1,2,3\n"


def collection(app, name: str, public: bool) -> str:
    """Alice's collection ``name``: carol reads it, dave writes in it, everyone reads it
    too when ``public``."""
    carol = app.get("/v1/", headers=CAROL).json["user"]["id"]
    dave = app.get("/v1/", headers=DAVE).json["user"]["id"]
    readers = [carol] + (["system.Everyone"] if public else [])
    path = f"/v1/buckets/b/collections/{name}"
    app.put_json(path, {"permissions": {"read": readers, "write": [dave]}}, headers=ALICE)
    return path


def matrix(app) -> dict[str, str]:
    """A record with a file in a public and in a private collection; their URLs."""
    records = {}
    for name, public in (("public", True), ("private", False)):
        path = collection(app, name, public)
        app.post(
            f"{path}/records/r1/attachment",
            upload_files=[("attachment", "numbers.csv", CONTENT)],
            headers=ALICE,
        )
        records[name] = f"{path}/records/r1"
    return records


@pytest.mark.unit
@pytest.mark.parametrize("method", ["get", "head"])
def test_local_downloads_follow_the_records_read_permission(storage_root, method):
    uploads = Uploads(build_app(storage_root), storage_root)
    app = uploads.app
    for visibility, record in matrix(app).items():
        for who, headers in CALLERS.items():
            kinto = app.get(record, headers=headers, expect_errors=True)
            answer = getattr(app, method)(f"{record}/attachment", headers=headers, status="*")
            assert answer.status_int == kinto.status_int, (visibility, who)
            if kinto.status_int != 200:
                if method == "get":
                    assert answer.json == kinto.json  # Kinto's own refusal, as it is
                continue
            assert answer.headers["Content-Type"] == "text/csv"
            assert answer.headers["Content-Length"] == str(len(CONTENT))
            assert answer.headers["ETag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'
            assert answer.headers["Content-Disposition"] == 'attachment; filename="numbers.csv"'
            assert answer.body == (CONTENT if method == "get" else b"")
    expected = {
        ("public", "anonymous"),
        ("public", "bob"),
        *((v, w) for v in ("public", "private") for w in ("reader", "writer", "owner")),
    }
    allowed = {
        (visibility, who)
        for visibility, record in matrix_urls(app).items()
        for who, headers in CALLERS.items()
        if getattr(app, method)(f"{record}/attachment", headers=headers, status="*").status_int
        == 200
    }
    assert allowed == expected


def matrix_urls(app) -> dict[str, str]:
    return {name: f"/v1/buckets/b/collections/{name}/records/r1" for name in ("public", "private")}


@pytest.mark.unit
def test_local_download_honours_range_and_conditions(uploads):
    meta = uploads.upload("r1", "a.txt", b"abcdefghij").json
    url = "/v1/buckets/b/collections/c/records/r1/attachment"
    part = uploads.app.get(url, headers={**ALICE, "Range": "bytes=2-4"}, status=206)
    assert part.body == b"cde" and part.headers["Content-Range"] == "bytes 2-4/10"
    etag = f'"{meta["hash"]}"'
    uploads.app.get(url, headers={**ALICE, "If-None-Match": etag}, status=304)
    uploads.app.get(url, headers={**ALICE, "Range": "bytes=-0"}, status=416)


@pytest.mark.unit
def test_a_record_without_a_file_is_a_404(uploads):
    url = "/v1/buckets/b/collections/c/records"
    uploads.app.put_json(f"{url}/r1", {"data": {"title": "no file"}}, headers=ALICE)
    answer = uploads.app.get(f"{url}/r1/attachment", headers=ALICE, status=404)
    assert answer.json["message"] == "This record has no attachment stored here."
    uploads.app.get(f"{url}/missing/attachment", headers=ALICE, status=404)


@pytest.mark.unit
def test_a_gzipped_attachment_is_served_as_stored(storage_root):
    uploads = Uploads(build_app(storage_root, gzipped="true"), storage_root)
    uploads.upload("r1", "a.txt", b"to be compressed" * 100)
    answer = uploads.app.get("/v1/buckets/b/collections/c/records/r1/attachment", headers=ALICE)
    assert gzip.decompress(answer.body) == b"to be compressed" * 100
    assert 'filename="a.txt.gz"' in answer.headers["Content-Disposition"]


@pytest.mark.unit
def test_content_disposition_keeps_non_ascii_names():
    assert content_disposition("a.txt") == 'attachment; filename="a.txt"'
    assert content_disposition('ré"sumé.pdf') == (
        "attachment; filename=\"r__sum_.pdf\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9.pdf"
    )


@pytest.mark.integration
def test_s3_downloads_redirect_to_a_presigned_url_that_expires(moto):
    bucket = moto.new_bucket()
    app = build_s3_app(bucket, moto.url, download_url_seconds="2")
    Uploads(app)
    records = matrix(app)
    for visibility, record in records.items():
        for who, headers in CALLERS.items():
            kinto = app.get(record, headers=headers, expect_errors=True)
            answer = app.get(f"{record}/attachment", headers=headers, status="*")
            if kinto.status_int != 200:
                assert answer.status_int == kinto.status_int, (visibility, who)
                assert "Location" not in answer.headers
                continue
            assert answer.status_int == 307, (visibility, who)
            assert answer.headers["Cache-Control"] == "private, no-store"
            url = answer.headers["Location"]
            assert "X-Amz-Signature=" in url and "response-content-disposition=" in url
    url = app.get(f"{records['private']}/attachment", headers=CAROL, status=307).headers["Location"]
    fetched = requests.get(url, timeout=30)
    assert fetched.status_code == 200 and fetched.content == CONTENT
    assert fetched.headers["Content-Type"] == "text/csv"
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="numbers.csv"'
    # moto serves a presigned URL past its expiry (it checks no signature at all): the
    # expiry set is checked in the URL itself, as S3 reads it.
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["2"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    assert abs(signed_at.replace(tzinfo=timezone.utc).timestamp() - time.time()) < 60


@pytest.mark.integration
def test_gcs_without_a_signing_key_says_what_it_needs(fake_gcs):
    """Anonymous credentials (an emulator's, or a VM's without a key) cannot sign a URL:
    a 503 that names the setting, never a 500 nor an unsigned URL."""
    app = build_gcs_app(fake_gcs.new_bucket(), fake_gcs.url)
    Uploads(app).upload("r1", "a.txt", b"abc")
    url = "/v1/buckets/b/collections/c/records/r1/attachment"
    answer = app.get(url, headers=ALICE, status=503)
    assert answer.json["errno"] == 201
    app.get(url, status=401)  # and Kinto still decides first


@pytest.mark.unit
def test_local_download_handed_to_nginx(storage_root):
    uploads = Uploads(build_app(storage_root, download_accel_path="/protected"), storage_root)
    meta = uploads.upload("r1", "naïve notes.txt", b"abc").json
    url = "/v1/buckets/b/collections/c/records/r1/attachment"
    answer = uploads.app.get(url, headers=ALICE)
    assert answer.body == b""
    assert answer.headers["X-Accel-Redirect"] == f"/protected/{meta['location']}"
    assert answer.headers["Content-Type"] == "text/plain"
    assert "filename*=UTF-8''na%C3%AFve%20notes.txt" in answer.headers["Content-Disposition"]
    assert "X-Accel-Redirect" not in uploads.app.get(url, status=401).headers
