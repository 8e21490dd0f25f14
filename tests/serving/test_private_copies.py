"""Who downloads a private file's copies: decided from what is stored beside the file (its
owner record), never from what a location says, and only while that owner record holds
this very file. A record id or a bucket created again gets nothing of its predecessor's
file, copies included. On local storage and on S3."""

from __future__ import annotations

import pytest
import webtest

from kinto_attachment_mw.files.locations import PrivateLocation
from kinto_attachment_mw.protocol.paths import RecordPath

from ..helpers.kinto_apps import ALICE, build_s3_app, userid
from .test_downloads import BOB, CAROL, CONTENT
from .test_private_files import OPEN, PRIVATE, SECRET, deployment, local_app

ELSEWHERE = "/v1/buckets/elsewhere/collections/pub/records"


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.unit),
        pytest.param("s3", marks=pytest.mark.integration),
    ]
)
def app_with(request, storage_root):
    """Builds the app, on local storage or S3, with more settings."""

    def build(**settings: str) -> webtest.TestApp:
        if request.param == "local":
            return local_app(storage_root, **settings)
        moto = request.getfixturevalue("moto")
        return build_s3_app(moto.new_bucket(), moto.url, **PRIVATE, **settings)

    return build


@pytest.fixture
def app(app_with):
    return app_with()


def straight_to_kinto(app: webtest.TestApp) -> webtest.TestApp:
    """Kinto without the middleware: a record written by a path that checks nothing.
    (Its body is seekable as it is: WebOb would copy a large one to a file that Kinto
    leaves open.)"""
    return webtest.TestApp(app.app.app, extra_environ={"webob.is_body_seekable": True})


def copied(app, path: str = f"{OPEN}/copy") -> dict:
    """Alice's private file (``secret/r1``, carol reads it) copied by carol, a reader, onto
    a record of a collection everyone reads; its attachment."""
    secret = deployment(app)["secret"]
    app.put_json(path, {"data": {"attachment": secret}}, headers=ALICE)
    return secret


def let_bob_create_records(app, collection: str = "/v1/buckets/b/collections/secret") -> None:
    permissions = {"permissions": {"record:create": [userid(app, BOB)]}}
    app.patch_json(collection, permissions, headers=ALICE)


def test_a_copy_is_for_those_who_may_read_it_and_its_owner_while_it_holds_the_file(app):
    copied(app)
    assert app.get(f"{OPEN}/copy/attachment", headers=CAROL).status_int in (200, 307)
    app.get(f"{OPEN}/copy/attachment", status=401)  # reads the copy, not the owner
    app.get(f"{OPEN}/copy/attachment", headers=BOB, status=403)
    # The owner record written again, its file unchanged: still served.
    app.patch_json(f"{SECRET}/r1", {"data": {"title": "renamed"}}, headers=ALICE)
    assert app.get(f"{OPEN}/copy/attachment", headers=CAROL).status_int in (200, 307)
    # Given another file, the owner no longer holds this one: the copy serves it no more.
    app.post(
        f"{SECRET}/r1/attachment",
        upload_files=[("attachment", "numbers.csv", b"new numbers\n")],
        headers=ALICE,
    )
    for headers in (CAROL, ALICE):
        app.get(f"{OPEN}/copy/attachment", headers=headers, status=404)


def test_deleted_then_created_again_by_someone_else_the_owner_id_reads_nothing(app):
    """The security review's case: alice's private ``r1`` copied by carol into a public
    collection, alice deletes ``r1`` (the file stays for the copy), bob, who may create
    records there, creates ``r1``: neither the copy nor ``r1`` serves alice's bytes, even
    when bob gives his ``r1`` the copy's attachment."""
    secret = copied(app)
    app.delete(f"{SECRET}/r1", headers=ALICE)
    for headers in (CAROL, ALICE):
        app.get(f"{OPEN}/copy/attachment", headers=headers, status=404)
    let_bob_create_records(app)
    app.put_json(f"{SECRET}/r1", {"data": {}}, headers=BOB, status=201)
    answer = app.get(f"{OPEN}/copy/attachment", headers=BOB, status=404)
    assert "no longer served" in answer.json["message"]
    # bob reads the copy's attachment (the collection is public) and gives it to his r1:
    # whether that write is refused or not, the file is his to download by no route.
    seen = app.get(f"{OPEN}/copy", headers=BOB).json["data"]["attachment"]
    assert seen == secret
    given = app.put_json(f"{SECRET}/r1", {"data": {"attachment": seen}}, headers=BOB, status="*")
    assert given.status_int in (200, 400)
    for url in (f"{SECRET}/r1/attachment", f"{OPEN}/copy/attachment"):
        assert app.get(url, headers=BOB, status=404).body != CONTENT


def test_a_bucket_deleted_and_created_again_reads_nothing_of_the_old_one(app):
    secret = copied(app, path=f"{ELSEWHERE}/copy")  # in another bucket, everyone reads it
    app.delete("/v1/buckets/b", headers=ALICE)
    app.get(f"{ELSEWHERE}/copy/attachment", headers=CAROL, status=404)
    # bob creates the bucket, the collection and the record again: all his.
    app.put_json("/v1/buckets/b", {}, headers=BOB, status=201)
    app.put_json("/v1/buckets/b/collections/secret", {}, headers=BOB, status=201)
    app.put_json(f"{SECRET}/r1", {"data": {}}, headers=BOB, status=201)
    app.get(f"{ELSEWHERE}/copy/attachment", headers=BOB, status=404)
    given = app.put_json(f"{SECRET}/r1", {"data": {"attachment": secret}}, headers=BOB, status="*")
    assert given.status_int in (200, 400)
    app.get(f"{SECRET}/r1/attachment", headers=BOB, status=404)
    app.get(f"{ELSEWHERE}/copy/attachment", headers=BOB, status=404)


@pytest.fixture(autouse=True)
def elsewhere(app):
    """Alice's bucket ``elsewhere``, with a collection everyone reads."""
    app.put_json("/v1/buckets/elsewhere", {}, headers=ALICE)
    everyone = {"permissions": {"read": ["system.Everyone"]}}
    app.put_json("/v1/buckets/elsewhere/collections/pub", everyone, headers=ALICE)


def test_a_forged_location_naming_anothers_private_key_is_refused(app):
    """However a record came to name another's private file (a write path that checks
    nothing; here, straight into Kinto), the file's own metadata says whose it is: the
    location's claim that the record is its owner is not believed."""
    secret = deployment(app)["secret"]
    key = PrivateLocation.parse(secret["location"]).key
    app.put_json("/v1/buckets/bobs", {}, headers=BOB)
    app.put_json("/v1/buckets/bobs/collections/c", {}, headers=BOB)
    mine = RecordPath("bobs", "c", "m1")
    for location in (PrivateLocation(mine, key).url("http://localhost"), secret["location"]):
        forged = {**secret, "location": location}
        body = {"data": {"attachment": forged}}
        straight_to_kinto(app).put_json(mine.url_path, body, headers=BOB, status=(200, 201))
        answer = app.get(f"{mine.url_path}/attachment", headers=BOB, status="*")
        assert answer.status_int in (403, 404), location
        assert "Location" not in answer.headers and answer.body != CONTENT
    # The owner's readers still download it from its record.
    assert app.get(f"{SECRET}/r1/attachment", headers=CAROL).status_int in (200, 307)


def give_back(app, secret: dict, how: str) -> int:
    """bob, who may create records in ``secret``, creates ``r1`` there again with the
    attachment he read on the public copy, by ``how``; the status of that write."""
    record = {"id": "r1", "attachment": secret}
    if how == "put":
        return app.put_json(f"{SECRET}/r1", {"data": record}, headers=BOB, status="*").status_int
    if how == "post":
        return app.post_json(SECRET, {"data": record}, headers=BOB, status="*").status_int
    batch = {"requests": [{"method": "PUT", "path": f"{SECRET}/r1", "body": {"data": record}}]}
    answer = app.post_json("/v1/batch", batch, headers=BOB).json
    return answer["responses"][0]["status"]


def assert_nothing_served_to_bob(app) -> None:
    for url in (f"{SECRET}/r1/attachment", f"{OPEN}/copy/attachment"):
        answer = app.get(url, headers=BOB, status="*")
        assert answer.status_int == 404, url
        assert answer.body != CONTENT and "Location" not in answer.headers


@pytest.mark.parametrize("how", ["put", "post", "batch"])
def test_a_record_created_again_given_its_predecessors_file_is_served_nothing(app_with, how):
    """A delete with more files beneath it than a request removes leaves them to gc: the
    owner's file is not marked as let go of then. Created again and given the file by
    whoever may create records there, the owner id reads nothing of it, nor its copies."""
    app = app_with(max_removals_per_request="0")
    secret = copied(app)
    # A write that Kinto refuses (bob may not write alice's r1) changes nothing.
    assert give_back(app, secret, how) == 403
    assert app.get(f"{OPEN}/copy/attachment", headers=CAROL).status_int in (200, 307)
    app.delete("/v1/buckets/b/collections/secret", headers=ALICE)
    app.put_json("/v1/buckets/b/collections/secret", {}, headers=ALICE)
    let_bob_create_records(app)
    assert give_back(app, secret, how) in (200, 201)
    assert_nothing_served_to_bob(app)


def test_flushed_with_keep_old_files_a_record_created_again_is_served_nothing(app_with):
    """``keep_old_files`` keeps every file through Kinto's flush: a bucket, collection
    and record created again by someone else, and given an old attachment, read nothing."""
    app = app_with(keep_old_files="true")
    secret = copied(app)
    app.post("/v1/__flush__", status=202)
    app.put_json("/v1/buckets/b", {}, headers=BOB)
    app.put_json("/v1/buckets/b/collections/secret", {}, headers=BOB)
    app.put_json("/v1/buckets/b/collections/open", {}, headers=BOB)
    app.put_json(f"{OPEN}/copy", {"data": {"attachment": secret}}, headers=BOB, status="*")
    assert give_back(app, secret, "put") in (200, 201)
    assert_nothing_served_to_bob(app)
