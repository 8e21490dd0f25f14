"""GCS storage behind a real Kinto app: objects and their properties, resumable uploads,
the bucket at start-up, and a GCS that fails (refuses connections, or stops answering).

fake-gcs-server stands in for GCS over HTTP; the tests check the bucket with their own
client, never through the middleware.
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest
from google.cloud.storage.retry import DEFAULT_RETRY

from kinto_attachment_mw.config import ConfigurationError, parse_settings
from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import (
    StoredFileMetadata,
    storage_from_settings,
)

from ...helpers.gcs import (
    TEST_CHUNK_SIZE,
    build_gcs_app,
    gcs_attachment_settings,
    gcs_storage,
    opened,
)
from ...helpers.kinto_apps import ALICE, RECORDS, Uploads
from ...helpers.s3 import StallingProxy

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
OWNER = RecordPath("b", "c", "r")
#: Fail fast in tests: the middleware's defaults allow a slow GCS more time.
IMPATIENT = {"timeout": (1.0, 2.0), "retry": DEFAULT_RETRY.with_timeout(3.0)}


def stored(storage, key: str, content: bytes, content_type: str = "text/plain") -> str:
    writer = storage.open_writer(key, content_type)
    for start in range(0, len(content), 300_000):  # odd sizes, across chunk boundaries
        writer.write(content[start : start + 300_000])
    return writer.commit(StoredFileMetadata(OWNER, hash="h", size=len(content)))


@pytest.mark.parametrize(
    "size", [pytest.param(1000, id="one-request"), pytest.param(3 * MiB + 17, id="resumable")]
)
def test_objects_carry_type_cache_control_acl_and_metadata(fake_gcs, size):
    bucket = fake_gcs.new_bucket()
    storage = gcs_storage(bucket, fake_gcs.url)
    settings = dataclasses.replace(storage.bucket.settings, cache_control="max-age=60")
    storage.bucket.settings = settings
    content = os.urandom(size)
    key = stored(storage, "b/c/file.bin", content, "application/x-thing")
    blob = fake_gcs.client.bucket(bucket).get_blob(key)
    assert blob.download_as_bytes() == content
    assert (blob.content_type, blob.cache_control) == ("application/x-thing", "max-age=60")
    assert blob.metadata == {"record": OWNER.uri, "hash": "h", "size": str(size)}
    assert storage.metadata(key) == StoredFileMetadata(OWNER, hash="h", size=size)
    blob.acl.reload()
    assert blob.acl.all().get_roles() == {"READER"}  # publicRead


def test_a_resumable_upload_never_takes_a_taken_name(fake_gcs):
    bucket = fake_gcs.new_bucket()
    storage = gcs_storage(bucket, fake_gcs.url)
    first = stored(storage, "big.bin", os.urandom(2 * TEST_CHUNK_SIZE))
    second = stored(storage, "big.bin", b"y" * (2 * TEST_CHUNK_SIZE + 1))
    assert (first, second) == ("big.bin", "big-1.bin")
    assert storage.stat(first).size == 2 * TEST_CHUNK_SIZE


def test_metadata_updates_keep_the_bytes(fake_gcs):
    bucket = fake_gcs.new_bucket()
    storage = gcs_storage(bucket, fake_gcs.url)
    key = stored(storage, "f.txt", b"content")
    storage.update_metadata(key, lambda metadata: dataclasses.replace(metadata, hash=None))
    assert storage.metadata(key) == StoredFileMetadata(OWNER, size=7)
    assert not fake_gcs.client.bucket(bucket).get_blob(key).metadata.get("hash")
    assert fake_gcs.client.bucket(bucket).blob(key).download_as_bytes() == b"content"


def test_a_missing_bucket_stops_start_up_unless_it_may_be_created(fake_gcs):
    name = f"missing-{time.time_ns()}"
    raw = gcs_attachment_settings(name, fake_gcs.url)
    with pytest.raises(ConfigurationError, match=f"bucket '{name}' does not exist"):
        opened(storage_from_settings(parse_settings(raw)))
    raw["kinto.attachment.gcloud.auto_create_bucket"] = "true"
    storage = opened(storage_from_settings(parse_settings(raw)))
    assert fake_gcs.client.lookup_bucket(name) is not None
    assert storage.exists(stored(storage, "x.txt", b"x"))
    opened(storage_from_settings(parse_settings(raw)))  # there now: nothing to create


def test_empty_credentials_reach_the_emulator_named_by_the_environment(fake_gcs, monkeypatch):
    """As with the plugin: no endpoint setting, ``STORAGE_EMULATOR_HOST`` decides."""
    bucket = fake_gcs.new_bucket()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.url)
    raw = {"kinto.attachment.gcloud.credentials": "", "kinto.attachment.gcloud.bucket_name": bucket}
    storage = opened(storage_from_settings(parse_settings(raw)))
    key = stored(storage, "env.txt", b"through the environment")
    assert fake_gcs.keys(bucket) == {key}


@pytest.fixture
def proxy(fake_gcs):
    proxy = StallingProxy(fake_gcs.port)
    yield proxy
    proxy.close()


def proxied_uploads(fake_gcs, proxy, patience=IMPATIENT) -> tuple[Uploads, str]:
    """The middleware reaches GCS through ``proxy``; the checks go to the server directly."""
    bucket = fake_gcs.new_bucket()
    storage = gcs_storage(bucket, proxy.url, **patience)
    return Uploads(build_gcs_app(bucket, proxy.url, storage=storage)), bucket


def assert_storage_unavailable(response) -> None:
    assert response.status_int == 503
    assert (response.json["code"], response.json["errno"]) == (503, 201)
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("size", [pytest.param(100, id="small"), pytest.param(3 * MiB, id="large")])
def test_gcs_down_gives_503_and_changes_nothing(fake_gcs, proxy, size):
    uploads, bucket = proxied_uploads(fake_gcs, proxy)
    current = uploads.upload("r1", "current.txt", b"current").json
    proxy.refuse()
    started = time.monotonic()
    assert_storage_unavailable(uploads.upload("r1", "new.txt", os.urandom(size), status=503))
    assert time.monotonic() - started < 30
    assert_storage_unavailable(uploads.upload("r2", "new.txt", b"new", status=503))
    response = uploads.app.get("/v1/__heartbeat__", status=503)
    assert response.json["attachments"] is False
    assert uploads.record("r1")["data"]["attachment"] == current
    uploads.record("r2", status=404)
    proxy.refuse(False)
    assert fake_gcs.keys(bucket) == {current["location"]}


def test_gcs_stalling_mid_upload_is_retried_once_on_a_new_connection(fake_gcs, proxy):
    """The read time-out ends the stalled request; the retry (conditional, as the first
    try) stores the file once."""
    # The stalled try takes the 2 s read time-out; the retry has the rest of a deadline
    # long enough for a loaded machine (it ends as soon as the retry has stored the file).
    patient_retry = {**IMPATIENT, "retry": DEFAULT_RETRY.with_timeout(15.0)}
    uploads, bucket = proxied_uploads(fake_gcs, proxy, patient_retry)
    proxy.stall_after(300)
    location = uploads.upload("r1", "new.txt", os.urandom(1000)).json["location"]
    assert proxy.stalled.is_set()
    assert fake_gcs.keys(bucket) == {location}


def test_a_bucket_gone_after_start_up_gives_503_not_500(fake_gcs):
    bucket = fake_gcs.new_bucket()
    uploads = Uploads(build_gcs_app(bucket, fake_gcs.url))
    fake_gcs.client.bucket(bucket).delete(force=True)
    assert_storage_unavailable(uploads.upload("r1", status=503))
    uploads.record("r1", status=404)
    uploads.app.delete(f"{RECORDS}/r1", headers=ALICE, status=404)
