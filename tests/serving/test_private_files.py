"""``kinto.attachment.private``: a private resource's files are downloaded through their
record only (Kinto's read permission decides), never served publicly."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import webtest

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.files.locations import PrivateLocation
from kinto_attachment_mw.protocol.paths import RecordPath

from ..helpers.gcs import ServiceAccount, build_gcs_app
from ..helpers.kinto_apps import (
    ALICE,
    Uploads,
    build_app,
    build_s3_app,
    fresh_kinto,
    kinto_settings,
)
from .test_downloads import BOB, CALLERS, CAROL, CONTENT, collection

PRIVATE = {"resources.b.secret.private": "true"}
SECRET = "/v1/buckets/b/collections/secret/records"
OPEN = "/v1/buckets/b/collections/open/records"


def deployment(app) -> dict[str, dict]:
    """A file in the private collection ``secret`` and one in the public ``open``; the
    uploads' answers (the records' attachments)."""
    Uploads(app)
    attachments = {}
    for name, public in (("secret", False), ("open", True)):
        path = collection(app, name, public)
        attachments[name] = app.post(
            f"{path}/records/r1/attachment",
            upload_files=[("attachment", "numbers.csv", CONTENT)],
            headers=ALICE,
        ).json
    return attachments


def local_app(storage_root, **settings):
    return build_app(
        storage_root,
        serve_path="/attachments",
        base_url="http://localhost/attachments/",
        **PRIVATE,
        **settings,
    )


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


@pytest.mark.unit
@pytest.mark.parametrize("method", ["get", "head"])
def test_a_private_location_is_the_download_url_kinto_guards(storage_root, method):
    app = local_app(storage_root)
    attachments = deployment(app)
    location = attachments["secret"]["location"]
    key = PrivateLocation.parse(location).key
    assert location == f"http://localhost{SECRET}/r1/attachment?key={key}"
    assert attachments["open"]["location"].startswith("http://localhost/attachments/")
    for who, headers in CALLERS.items():
        kinto = app.get(f"{SECRET}/r1", headers=headers, expect_errors=True)
        answer = getattr(app, method)(path_of(location), headers=headers, status="*")
        assert answer.status_int == kinto.status_int, who
        if kinto.status_int == 200:
            assert answer.headers["ETag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'
            assert answer.body == (CONTENT if method == "get" else b"")
        elif method == "get":
            assert answer.json == kinto.json
    # Not reachable by its key, as the public file is, however spelled.
    name = key.removeprefix("_private/")
    for spelling in (key, f"%5Fprivate/{name}", f"_PRIVATE/{name}", f"./_private/{name}"):
        getattr(app, method)(f"/attachments/{spelling}", status=404)
    public_key = attachments["open"]["location"].removeprefix("http://localhost/attachments/")
    assert getattr(app, method)(f"/attachments/{public_key}").status_int == 200
    folder, name = key.rsplit("/", 1)
    assert folder == "_private"  # one prefix that public paths leave out
    assert json.loads((storage_root / folder / f".{name}.meta").read_text())["private"] is True


@pytest.mark.unit
def test_the_capability_names_no_private_resource(storage_root):
    """Anyone may read ``GET /v1/``: it does not list the buckets and collections
    configured private (a file's ``location`` tells its readers it is private)."""
    app = local_app(storage_root, **{"resources.hr.contracts.private": "true"})
    capability = app.get("/v1/").json["capabilities"]["attachments"]
    assert "private" not in capability
    text = json.dumps(capability)
    for name in ("hr", "contracts", "secret"):
        assert f'"{name}' not in text and f"{name}/" not in text


@pytest.mark.unit
def test_a_copy_of_a_private_file_is_for_the_readers_of_its_owner(storage_root):
    """Copied onto a record of a public collection, a private file is still downloaded by
    those who may read the record it was uploaded for only."""
    app = local_app(storage_root)
    secret = deployment(app)["secret"]
    app.put_json(f"{OPEN}/copy", {"data": {"attachment": secret}}, headers=ALICE)
    assert app.get(f"{OPEN}/copy").json["data"]["attachment"] == secret  # anyone reads it
    app.get(f"{OPEN}/copy/attachment", status=401)
    assert app.get(f"{OPEN}/copy/attachment", headers=CAROL).body == CONTENT
    app.get(path_of(secret["location"]), status=401)
    # Replaced on its record, the old file stays for the copy, but is served to no one:
    # its owner no longer holds it (a record id can be deleted and created again by
    # someone else, and given the file back by a copy).
    app.post(
        f"{SECRET}/r1/attachment",
        upload_files=[("attachment", "numbers.csv", b"new numbers\n")],
        headers=ALICE,
    )
    assert storage_root.joinpath(PrivateLocation.parse(secret["location"]).key).exists()
    for headers in (CAROL, ALICE):
        gone = app.get(f"{OPEN}/copy/attachment", headers=headers, status=404)
        assert "no longer served" in gone.json["message"]
    app.get(path_of(secret["location"]), headers=CAROL, status=404)
    assert app.get(f"{SECRET}/r1/attachment", headers=CAROL).body == b"new numbers\n"


@pytest.mark.unit
def test_a_record_id_created_again_gets_none_of_the_old_files(storage_root):
    """Deleted, the owner's file stays for a copy (or keep_old_files); whoever creates a
    record of that id again cannot name it."""
    app = local_app(storage_root)
    secret = deployment(app)["secret"]
    key = PrivateLocation.parse(secret["location"]).key
    app.put_json(f"{SECRET}/keep", {"data": {"attachment": secret}}, headers=ALICE)
    app.delete(f"{SECRET}/r1", headers=ALICE)
    # bob may create records there, and read only his own.
    bob = app.get("/v1/", headers=BOB).json["user"]["id"]
    permissions = {"permissions": {"record:create": [bob]}}
    app.patch_json("/v1/buckets/b/collections/secret", permissions, headers=ALICE)
    app.put_json(f"{SECRET}/r1", {"data": {}}, headers=BOB, status=201)
    app.get(f"{SECRET}/r1/attachment?key={key}", headers=BOB, status=404)
    app.get(f"{SECRET}/keep/attachment", headers=BOB, status=403)


@pytest.mark.unit
@pytest.mark.parametrize("query", ["key=%ff", "key=" + "a" * 300, "key=a&key=b", "key="])
def test_odd_keys_are_404s(storage_root, query):
    app = local_app(storage_root)
    deployment(app)
    answer = app.get(f"{SECRET}/r1/attachment?{query}", headers=ALICE, status=404)
    assert answer.json["errno"] == 111


@pytest.mark.unit
def test_a_url_cannot_name_another_records_file(storage_root):
    app = local_app(storage_root)
    attachments = deployment(app)
    key = PrivateLocation.parse(attachments["secret"]["location"]).key
    # The public record is readable by anyone; its URL does not serve the private file.
    answer = app.get(f"{OPEN}/r1/attachment?key={key}", status=404)
    assert "no longer that file" in answer.json["message"]
    app.get(f"{OPEN}/r1/attachment?key=../../etc/passwd", status=404)
    # Nor can a record be given a private location that names another owner.
    forged = {
        **attachments["secret"],
        "location": PrivateLocation(RecordPath("b", "open", "r2"), key).url("http://localhost"),
    }
    answer = app.put_json(f"{OPEN}/r2", {"data": {"attachment": forged}}, headers=ALICE, status=400)
    assert answer.json["errno"] == 107
    # Nor a copy whose location sends readers, with their credentials, elsewhere.
    location = attachments["secret"]["location"]
    for elsewhere in (
        location.replace("http://localhost", "https://attacker.example"),
        location + "&key=x",
        location.replace("/v1/", "/v1//"),
    ):
        copy = {**attachments["secret"], "location": elsewhere}
        refused = app.put_json(
            f"{OPEN}/r3", {"data": {"attachment": copy}}, headers=ALICE, status=400
        )
        assert refused.json["errno"] == 107
        if elsewhere.startswith("https://attacker.example"):
            assert location in refused.json["message"]  # says what it would accept
    copy = {"attachment": attachments["secret"]}
    app.put_json(f"{OPEN}/r3", {"data": copy}, headers=ALICE, status=201)


@pytest.mark.unit
def test_rewriting_a_location_to_another_form_keeps_the_file(storage_root):
    """What ``privatize`` does to records: the same stored file under its public URL, then
    back; the file is not taken for a dropped one."""
    app = build_app(storage_root, base_url="http://localhost/attachments/")
    uploads = Uploads(app, storage_root)
    attachment = uploads.upload("r1", "a.txt", b"abc").json
    key = attachment["location"].removeprefix("http://localhost/attachments/")
    private = PrivateLocation(RecordPath("b", "c", "r1"), key).url("http://localhost")
    record = "/v1/buckets/b/collections/c/records/r1"
    for location in (private, attachment["location"]):
        changed = {**attachment, "location": location}
        app.patch_json(record, {"data": {"attachment": changed}}, headers=ALICE)
        assert uploads.files() == {key}
        assert app.get(f"{record}/attachment", headers=ALICE).body == b"abc"


@pytest.mark.integration
def test_s3_private_objects_have_no_public_acl(moto):
    bucket = moto.new_bucket()
    app = build_s3_app(bucket, moto.url, **{"aws.acl": "public-read"}, **PRIVATE)
    attachments = deployment(app)
    storage = app.app.storage
    keys = {
        "secret": PrivateLocation.parse(attachments["secret"]["location"]).key,
        "open": storage.key_for(attachments["open"]["location"]),
    }
    public = {
        name: any(
            grant["Grantee"].get("URI", "").endswith("/global/AllUsers")
            for grant in storage.client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        )
        for name, key in keys.items()
    }
    assert public == {"secret": False, "open": True}
    assert requests.get(f"{moto.url}/{bucket}/{keys['open']}", timeout=30).content == CONTENT
    assert requests.get(f"{moto.url}/{bucket}/{keys['secret']}", timeout=30).status_code == 403
    for who, headers in CALLERS.items():
        kinto = app.get(f"{SECRET}/r1", headers=headers, expect_errors=True)
        answer = app.get(path_of(attachments["secret"]["location"]), headers=headers, status="*")
        assert answer.status_int == (307 if kinto.status_int == 200 else kinto.status_int), who
        if answer.status_int == 307:
            assert requests.get(answer.headers["Location"], timeout=30).content == CONTENT


@pytest.mark.integration
def test_gcs_private_files_download_through_a_signed_url(fake_gcs, tmp_path):
    """With a service account key, the record's readers are sent to a V4 signed URL that
    the GCS server serves; everyone else gets Kinto's refusal."""
    account = ServiceAccount(tmp_path)
    try:
        app = build_gcs_app(
            fake_gcs.new_bucket(),
            fake_gcs.url,
            **{"gcloud.credentials": str(account.path), "download_url_seconds": "120"},
            **PRIVATE,
        )
        location = deployment(app)["secret"]["location"]
        for who, headers in CALLERS.items():
            kinto = app.get(f"{SECRET}/r1", headers=headers, expect_errors=True)
            answer = app.get(path_of(location), headers=headers, status="*")
            expected = 307 if kinto.status_int == 200 else kinto.status_int
            assert answer.status_int == expected, who
            if answer.status_int != 307:
                continue
            url = answer.headers["Location"]
            assert url.startswith(fake_gcs.url)
            query = parse_qs(urlsplit(url).query)
            assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
            assert query["X-Goog-Expires"] == ["120"] and query["X-Goog-Signature"]
            assert query["response-content-disposition"] == ['attachment; filename="numbers.csv"']
            assert requests.get(url, timeout=30).content == CONTENT
    finally:
        account.stop()


@pytest.mark.integration
def test_gcs_private_objects_have_no_public_acl(fake_gcs):
    app = build_gcs_app(fake_gcs.new_bucket(), fake_gcs.url, **PRIVATE)
    attachments = deployment(app)
    storage = app.app.storage
    keys = {
        "secret": PrivateLocation.parse(attachments["secret"]["location"]).key,
        "open": storage.key_for(attachments["open"]["location"]),
    }
    blobs = {name: storage.bucket.get(key) for name, key in keys.items()}
    for blob in blobs.values():
        blob.acl.reload()
    # fake-gcs-server keeps ACLs but serves every object: the ACL is what is checked.
    public = {name: "allUsers" in {e["entity"] for e in blob.acl} for name, blob in blobs.items()}
    assert public == {"secret": False, "open": True}
    assert blobs["secret"].metadata["private"] == "true"
    assert "private" not in blobs["open"].metadata


@pytest.mark.unit
def test_locations_follow_kintos_public_address(storage_root):
    """Behind a proxy, Kinto's ``http_scheme`` and ``http_host`` say how clients reach the
    server: the URLs the middleware hands out follow them, as Kinto's own do."""
    settings = {
        **kinto_settings(storage_root, **PRIVATE),
        "kinto.http_scheme": "https",
        "kinto.http_host": "kinto.example.com",
    }
    app = webtest.TestApp(AttachmentMiddleware(fresh_kinto(settings), settings))
    Uploads(app)
    collection(app, "secret", public=False)
    created = app.post(
        f"{SECRET}/r1/attachment",
        upload_files=[("attachment", "numbers.csv", CONTENT)],
        headers=ALICE,
    )
    assert created.headers["Location"] == f"https://kinto.example.com{SECRET}/r1"
    location = created.json["location"]
    assert location.startswith(f"https://kinto.example.com{SECRET}/r1/attachment?key=")
    assert app.get(path_of(location), headers=CAROL).body == CONTENT


@pytest.mark.unit
def test_a_private_file_copied_inside_a_batch(storage_root):
    app = local_app(storage_root)
    secret = deployment(app)["secret"]
    requests_ = [
        {"method": "PUT", "path": f"{OPEN}/copy", "body": {"data": {"attachment": secret}}},
        {
            "method": "PUT",
            "path": f"{OPEN}/forged",
            "body": {"data": {"attachment": {**secret, "location": secret["location"] + "x"}}},
        },
    ]
    answer = app.post_json("/v1/batch", {"requests": requests_[:1]}, headers=ALICE)
    assert answer.json["responses"][0]["status"] == 201
    app.post_json("/v1/batch", {"requests": requests_[1:]}, headers=ALICE, status=400)
    assert app.get(f"{OPEN}/copy/attachment", headers=CAROL).body == CONTENT
    app.get(f"{OPEN}/copy/attachment", status=401)


@pytest.mark.unit
def test_private_files_without_a_trusted_host_are_warned_about(storage_root, caplog):
    local_app(storage_root)
    assert "set kinto.http_host" in caplog.text
    caplog.clear()
    settings = {**kinto_settings(storage_root, **PRIVATE), "kinto.http_host": "kinto.example.com"}
    AttachmentMiddleware(fresh_kinto(settings), settings)
    assert "set kinto.http_host" not in caplog.text


@pytest.mark.unit
def test_with_kintos_host_set_a_forged_host_header_changes_no_location(storage_root):
    settings = {**kinto_settings(storage_root, **PRIVATE), "kinto.http_host": "localhost"}
    app = webtest.TestApp(AttachmentMiddleware(fresh_kinto(settings), settings))
    secret = deployment(app)["secret"]
    forged = {"Host": "attacker.example", **ALICE}
    uploaded = app.post(
        f"{SECRET}/r2/attachment",
        upload_files=[("attachment", "numbers.csv", CONTENT)],
        headers=forged,
    ).json
    assert uploaded["location"].startswith(f"http://localhost{SECRET}/r2/attachment?key=")
    elsewhere = secret["location"].replace("http://localhost", "http://attacker.example")
    copy = {"data": {"attachment": {**secret, "location": elsewhere}}}
    app.put_json(f"{OPEN}/r9", copy, headers=forged, status=400)


@pytest.mark.unit
def test_a_private_file_under_a_public_form_of_location_is_still_its_owners(storage_root):
    app = local_app(storage_root)
    secret = deployment(app)["secret"]
    key = PrivateLocation.parse(secret["location"]).key
    public_form = {**secret, "location": f"http://localhost/attachments/{key}"}
    app.put_json(f"{OPEN}/copy", {"data": {"attachment": public_form}}, headers=ALICE)
    app.get(f"{OPEN}/copy/attachment", status=401)
    assert app.get(f"{OPEN}/copy/attachment", headers=CAROL).body == CONTENT
    app.get(f"/attachments/{key}", status=404)
