"""S3 storage behind a real Kinto app: objects, keys, ACLs, multipart uploads, and an S3
that fails (refuses connections, or stops answering in the middle of an upload).

moto's server stands in for S3 over HTTP; the tests check the bucket with their own
client, never through the middleware.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time

import pytest
from botocore.config import Config

from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import StorageUnavailable, StoredFileMetadata
from kinto_attachment_mw.storage.s3 import S3Storage

from ...helpers.kinto_apps import (
    ALICE,
    RECORDS,
    TEST_PART_SIZE,
    Uploads,
    build_s3_app,
    s3_settings,
    s3_storage,
)
from ...helpers.s3 import StallingProxy, bucket_keys, pending_uploads

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
BASE_URL = "https://cdn.example.com/files/"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
#: Fail fast in tests: the middleware's defaults allow a slow S3 more time.
IMPATIENT = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})


class S3Uploads(Uploads):
    def __init__(self, app, client, bucket):
        super().__init__(app, None)
        self.client = client
        self.bucket = bucket

    def key_of(self, location: str) -> str:
        assert location.startswith(BASE_URL), location
        return location[len(BASE_URL) :]

    def object(self, location: str) -> dict:
        return self.client.get_object(Bucket=self.bucket, Key=self.key_of(location))

    def keys(self) -> set[str]:
        return bucket_keys(self.client, self.bucket)

    def pending(self) -> list[dict]:
        return pending_uploads(self.client, self.bucket)


def s3_uploads(moto, storage=None, bucket=None, **attachment) -> S3Uploads:
    bucket = bucket or moto.new_bucket()
    attachment.setdefault("base_url", BASE_URL)
    app = build_s3_app(bucket, moto.url, storage=storage, **attachment)
    return S3Uploads(app, moto.client, bucket)


@pytest.fixture
def s3(moto) -> S3Uploads:
    return s3_uploads(moto, folder="{bucket_id}/{collection_id}")


def test_object_has_the_bytes_type_and_metadata(s3):
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)
    meta = s3.upload("r1", "pixel.png", content, content_type="image/png").json
    key = s3.key_of(meta["location"])
    assert key.startswith("b/c/") and key.endswith(".png")
    stored = s3.object(meta["location"])
    assert stored["Body"].read() == content
    assert stored["ContentType"] == "image/png"
    assert "ContentEncoding" not in stored
    assert stored["Metadata"] == {
        "record": "/buckets/b/collections/c/records/r1",
        "hash": hashlib.sha256(content).hexdigest(),
        "size": str(len(content)),
        "mimetype": "image/png",  # what a record may describe it as
    }
    assert s3.record("r1")["data"]["attachment"] == meta
    assert s3.keys() == {key}


def test_objects_are_private_unless_an_acl_is_set(moto):
    private = s3_uploads(moto)
    public = s3_uploads(moto, **{"aws.acl": "public-read"})
    for uploads, readable in ((private, False), (public, True)):
        meta = uploads.upload("r1", "a.txt", b"a").json
        acl = moto.client.get_object_acl(
            Bucket=uploads.bucket, Key=uploads.key_of(meta["location"])
        )
        grants = {(g["Grantee"].get("URI"), g["Permission"]) for g in acl["Grants"]}
        assert ((ALL_USERS, "READ") in grants) is readable


def test_keys_follow_folder_and_filename_pattern(moto):
    s3 = s3_uploads(
        moto,
        folder="{bucket_id}/{collection_id}/{record_id}",
        randomize="false",
        filename_pattern="{rid}-{filename}",
    )
    first = s3.upload("r1", "Résumé final.txt", b"one").json
    again = s3.upload("r1", "Résumé final.txt", b"two").json
    assert s3.key_of(first["location"]) == "b/c/r1/r1-Resume_final.txt"
    # never overwritten: the replacement took the next free name, the old one went
    assert s3.key_of(again["location"]) == "b/c/r1/r1-Resume_final-1.txt"
    assert s3.keys() == {"b/c/r1/r1-Resume_final-1.txt"}


def test_replacement_and_delete_remove_the_objects(s3):
    old = s3.upload("r1", "old.txt", b"old").json
    new = s3.upload("r1", "new.txt", b"new").json
    assert s3.keys() == {s3.key_of(new["location"])}
    s3.app.delete(f"{RECORDS}/r1/attachment", headers=ALICE, status=204)
    assert s3.keys() == set()
    assert s3.record("r1")["data"]["attachment"] is None
    assert old["location"] != new["location"]


def test_keep_old_files_keeps_objects(moto):
    s3 = s3_uploads(moto, keep_old_files="true")
    old = s3.upload("r1", "old.txt", b"old").json
    new = s3.upload("r1", "new.txt", b"new").json
    assert s3.keys() == {s3.key_of(old["location"]), s3.key_of(new["location"])}


def test_large_file_goes_up_in_parts(moto):
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, moto.url, BASE_URL, acl="public-read")
    s3 = s3_uploads(moto, storage, bucket, **{"aws.acl": "public-read"})
    content = os.urandom(2 * TEST_PART_SIZE + 12345)
    meta = s3.upload("big", "big.csv", content, content_type="text/csv").json
    assert meta["size"] == len(content)
    assert meta["hash"] == hashlib.sha256(content).hexdigest()
    stored = s3.object(meta["location"])
    assert stored["Body"].read() == content
    assert stored["ContentType"] == "text/csv"
    assert stored["Metadata"]["hash"] == meta["hash"]
    assert stored["Metadata"]["record"] == "/buckets/b/collections/c/records/big"
    assert storage.metadata(s3.key_of(meta["location"])).size == len(content)
    acl = moto.client.get_object_acl(Bucket=bucket, Key=s3.key_of(meta["location"]))
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in acl["Grants"])
    assert s3.pending() == []


def parts_in_s3(client, bucket: str) -> int:
    """How many parts of the bucket's pending uploads S3 holds."""
    return sum(
        len(client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
        for u in pending_uploads(client, bucket)
    )


def eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_parts_are_sent_as_they_arrive(moto):
    """Each full part goes to S3 (in the background) before the file is complete."""
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, moto.url)
    writer = storage.open_writer("f/big.bin", "application/octet-stream")
    content = os.urandom(2 * TEST_PART_SIZE + 1)
    writer.write(content[: TEST_PART_SIZE - 1])
    assert pending_uploads(moto.client, bucket) == []  # not a full part yet
    writer.write(content[TEST_PART_SIZE - 1 : TEST_PART_SIZE + 10])
    assert eventually(lambda: parts_in_s3(moto.client, bucket) == 1)
    writer.write(content[TEST_PART_SIZE + 10 :])
    assert eventually(lambda: parts_in_s3(moto.client, bucket) == 2)
    key = writer.commit(StoredFileMetadata(RecordPath("b", "c", "r"), hash="h"))
    assert key == "f/big.bin"
    assert moto.client.get_object(Bucket=bucket, Key=key)["Body"].read() == content
    assert storage.metadata(key) == StoredFileMetadata(RecordPath("b", "c", "r"), hash="h")
    assert pending_uploads(moto.client, bucket) == []


def test_client_honours_timeout_retries_and_addressing_settings(moto):
    settings = s3_settings(
        "b", moto.url, timeout_seconds=5.0, num_retries=3, addressing_style="path"
    )
    config = S3Storage(settings).client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (5.0, 5.0)
    assert config.retries["total_max_attempts"] == 4
    assert config.s3["addressing_style"] == "path"
    defaults = S3Storage(s3_settings("b", moto.url)).client.meta.config
    assert (defaults.connect_timeout, defaults.read_timeout) == (3, 20)
    assert defaults.retries["total_max_attempts"] == 2


def test_heartbeat_writes_and_deletes_a_probe(s3):
    assert s3.app.get("/v1/__heartbeat__").json["attachments"] is True
    assert s3.keys() == set()


@pytest.fixture
def proxy(moto):
    proxy = StallingProxy(moto.port)
    yield proxy
    proxy.close()


def proxied_uploads(moto, proxy) -> S3Uploads:
    """The middleware reaches S3 through ``proxy``; the checks go to moto directly."""
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, proxy.url, BASE_URL, client_config=IMPATIENT)
    return s3_uploads(moto, storage, bucket)


def test_heartbeat_is_false_when_s3_is_down(moto, proxy):
    s3 = proxied_uploads(moto, proxy)
    proxy.refuse()
    response = s3.app.get("/v1/__heartbeat__", status=503)
    assert response.json["attachments"] is False
    assert response.json["storage"] is True


def assert_storage_unavailable(response) -> None:
    assert response.status_int == 503
    assert response.json["errno"] == 201
    assert response.json["code"] == 503
    assert response.headers["Retry-After"]


def test_s3_down_gives_503_and_changes_nothing(moto, proxy):
    s3 = proxied_uploads(moto, proxy)
    current = s3.upload("r1", "current.txt", b"current").json
    proxy.refuse()
    assert_storage_unavailable(s3.upload("r1", "new.txt", b"new", status=503))
    assert_storage_unavailable(s3.upload("r2", "new.txt", b"new", status=503))
    assert s3.record("r1")["data"]["attachment"] == current
    s3.record("r2", status=404)
    assert s3.keys() == {s3.key_of(current["location"])}


@pytest.mark.parametrize(
    "size,stall_at",
    [
        pytest.param(1000, 300, id="single-put"),
        pytest.param(3 * TEST_PART_SIZE, TEST_PART_SIZE + 2 * MiB, id="second-part"),
    ],
)
def test_s3_stalling_mid_upload_leaves_nothing(moto, proxy, size, stall_at):
    """S3 stops answering while the file goes up: 503, the record as it was, no object,
    and no multipart upload left pending (the abort gets through on a new connection)."""
    s3 = proxied_uploads(moto, proxy)
    current = s3.upload("r1", "current.txt", b"current").json
    proxy.stall_after(stall_at)
    response = s3.upload("r1", "new.bin.txt", os.urandom(size), status=503)
    assert proxy.stalled.is_set()
    assert_storage_unavailable(response)
    assert s3.record("r1")["data"]["attachment"] == current
    assert s3.keys() == {s3.key_of(current["location"])}
    assert s3.pending() == []
    assert s3.upload("r2", "after.txt", b"after").status_int == 201


def test_upload_whose_abort_failed_is_swept_later(moto, proxy):
    """S3 went away for good mid-upload: the abort could not get through either, so the
    upload stays pending until ``sweep_leftovers`` aborts it."""
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, proxy.url, client_config=IMPATIENT)
    writer = storage.open_writer("x/big.bin", "application/octet-stream")
    writer.write(os.urandom(TEST_PART_SIZE))
    assert eventually(lambda: parts_in_s3(moto.client, bucket) == 1)
    proxy.refuse()
    writer.write(os.urandom(TEST_PART_SIZE))  # handed to the sender, which fails
    with pytest.raises(StorageUnavailable):
        writer.commit(StoredFileMetadata(RecordPath("b", "c", "r"), hash="h"))
    assert [upload["Key"] for upload in pending_uploads(moto.client, bucket)] == ["x/big.bin"]
    proxy.refuse(False)
    swept = list(storage.sweep_leftovers(time.time() + 60))
    assert [(info.key, info.size) for info in swept] == [("x/big.bin", TEST_PART_SIZE)]
    assert pending_uploads(moto.client, bucket) == []
    assert bucket_keys(moto.client, bucket) == set()


def test_metadata_of_objects_too_large_for_one_copy(moto):
    """Past ``CopyObject``'s limit (5 GiB on S3, lowered here) the metadata is written by a
    copy in parts: after a multipart upload, and when the file is marked shared."""
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, moto.url, copy_limit=TEST_PART_SIZE, acl="public-read")
    content = os.urandom(TEST_PART_SIZE + 1000)
    writer = storage.open_writer("huge.bin", "application/x-thing")
    writer.write(content)
    key = writer.commit(StoredFileMetadata(RecordPath("b", "c", "r"), hash="h", size=1))
    storage.update_metadata(key, lambda m: dataclasses.replace(m, shared=True))
    stored = moto.client.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == content
    assert stored["ContentType"] == "application/x-thing"
    assert storage.metadata(key) == StoredFileMetadata(
        RecordPath("b", "c", "r"), hash="h", size=1, shared=True
    )
    acl = moto.client.get_object_acl(Bucket=bucket, Key=key)
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in acl["Grants"])
    assert pending_uploads(moto.client, bucket) == []


def test_multipart_upload_never_overwrites_a_name_taken_meanwhile(moto):
    """A multipart upload picks a free name when it starts; should another writer take it
    before the upload completes, the completion is refused: nothing is overwritten."""
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, moto.url)
    moto.client.put_object(Bucket=bucket, Key="f/race.bin", Body=b"first")
    writer = storage.open_writer("f/race.bin", "application/octet-stream")
    writer.write(os.urandom(TEST_PART_SIZE))
    moto.client.put_object(Bucket=bucket, Key="f/race-1.bin", Body=b"meanwhile")
    with pytest.raises(StorageUnavailable):
        writer.commit(StoredFileMetadata(RecordPath("b", "c", "r"), hash="h"))
    read = moto.client.get_object
    assert read(Bucket=bucket, Key="f/race-1.bin")["Body"].read() == b"meanwhile"
    assert read(Bucket=bucket, Key="f/race.bin")["Body"].read() == b"first"
    assert pending_uploads(moto.client, bucket) == []


def test_lifecycle_on_s3_copies_tamper_deletes_and_flush(s3):
    app = s3.app
    app.put_json("/v1/buckets/b/collections/review", {}, headers=ALICE)
    stored = s3.upload("r1", "a.txt", b"first").json
    forged = {**stored, "size": 99}
    app.put_json(
        "/v1/buckets/b/collections/review/records/r1",
        {"data": {"attachment": forged}},
        headers=ALICE,
        status=400,
    )
    app.put_json(
        "/v1/buckets/b/collections/review/records/r1",
        {"data": {"attachment": stored}},
        headers=ALICE,
        status=201,
    )
    key = s3.key_of(stored["location"])
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["Metadata"]["shared"] == "true"
    assert head["ContentType"] == "text/plain"
    # The owner replaces its file: the shared one stays for the copy.
    second = s3.upload("r1", "b.txt", b"second").json
    assert s3.keys() == {key, s3.key_of(second["location"])}
    app.delete(f"{RECORDS}/r1", headers=ALICE)
    assert s3.keys() == {key}
    third = s3.upload("r3", "c.txt", b"third").json
    app.delete("/v1/buckets/b/collections/c", headers=ALICE)
    assert s3.key_of(third["location"]) != key and s3.keys() == {key}
    app.post("/v1/__flush__", status=202)
    assert s3.keys() == set()


def test_s3_failing_on_the_metadata_read_refuses_the_copy(moto):
    """A HEAD that fails is no answer: were it read as "no metadata" (a plugin's file),
    a copy would pass unchecked and unshared."""
    from botocore.exceptions import EndpointConnectionError

    from kinto_attachment_mw.files.guard import AttachmentGuard
    from kinto_attachment_mw.locks import ProcessLocks

    storage = s3_storage(moto.new_bucket(), moto.url, BASE_URL)
    writer = storage.open_writer("f/a.txt", "text/plain")
    writer.write(b"hello")
    key = writer.commit(StoredFileMetadata(RecordPath("b", "c", "r1"), hash="h", size=5))
    real_head, calls = storage.client.head_object, []

    def head_failing_second(**params):
        calls.append(params)
        if len(calls) == 2:  # the stat passes, the metadata read fails
            raise EndpointConnectionError(endpoint_url=moto.url)
        return real_head(**params)

    storage.client.head_object = head_failing_second
    guard = AttachmentGuard(storage, ProcessLocks(5))
    copy = {"location": storage.url(key), "hash": "h", "size": 5}
    with pytest.raises(StorageUnavailable):
        guard.check(copy, None, RecordPath("b", "other", "r2"))
    storage.client.head_object = real_head
    assert not storage.metadata(key).shared


def test_sweep_spares_a_long_upload_still_sending_parts(moto):
    """An upload started long ago (moto dates every start alike, years back) that sent a
    part a moment ago is in progress, not a leftover; once idle, it goes."""
    storage = s3_storage(moto.new_bucket(), moto.url, BASE_URL)
    writer = storage.open_writer("big.bin", "application/octet-stream")
    writer.write(os.urandom(TEST_PART_SIZE + 10))  # the first part goes out
    assert eventually(lambda: len(pending_uploads(moto.client, storage.bucket)) == 1)
    assert eventually(lambda: parts_in_s3(moto.client, storage.bucket) == 1)
    assert list(storage.sweep_leftovers(time.time() - 60)) == []
    assert [info.key for info in storage.sweep_leftovers(time.time() + 60)] == ["big.bin"]
    assert pending_uploads(moto.client, storage.bucket) == []
    writer.abort()
