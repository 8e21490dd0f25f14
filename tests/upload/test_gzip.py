"""``gzipped = true``: files stored compressed, the upload described in ``original``; on
local storage and on S3 alike, with a collection that opts out."""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from ..helpers.kinto_apps import ALICE, Uploads, build_app, build_s3_app
from ..helpers.s3 import bucket_keys

BASE_URL = "https://cdn.example.com/files/"
LIMIT = 5000
SETTINGS = {
    "gzipped": "true",
    "resources.b.plain.gzipped": "false",
    "max_size_bytes": str(LIMIT),
    "base_url": BASE_URL,
    "folder": "{collection_id}",
}


class Stored:
    """Reads what a backend stored, through its own means (disk, or S3's API)."""

    def __init__(self, uploads: Uploads, read, keys, content_type=None):
        self.uploads = uploads
        self.read = read
        self.keys = keys
        self.content_type = content_type


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.unit),
        pytest.param("s3", marks=pytest.mark.integration),
    ]
)
def stored(request, storage_root) -> Stored:
    if request.param == "local":
        uploads = Uploads(build_app(storage_root, **SETTINGS), storage_root)
        return Stored(
            uploads,
            lambda key: (storage_root / key).read_bytes(),
            lambda: uploads.files(),
        )
    moto = request.getfixturevalue("moto")
    bucket = moto.new_bucket()
    uploads = Uploads(build_s3_app(bucket, moto.url, **SETTINGS), None)

    def get(key):
        return moto.client.get_object(Bucket=bucket, Key=key)

    return Stored(
        uploads,
        lambda key: get(key)["Body"].read(),
        lambda: bucket_keys(moto.client, bucket),
        lambda key: (get(key)["ContentType"], get(key).get("ContentEncoding")),
    )


def key_of(location: str) -> str:
    assert location.startswith(BASE_URL)
    return location[len(BASE_URL) :]


TEXT = b"Kinto attachments, compressed while they stream.\n" * 80


def test_stored_gzipped_and_described(stored):
    meta = stored.uploads.upload("r1", "notes.txt", TEXT, content_type="text/plain").json
    key = key_of(meta["location"])
    assert key.startswith("c/") and key.endswith(".gz")
    data = stored.read(key)
    assert gzip.decompress(data) == TEXT
    assert meta == {
        "filename": "notes.txt.gz",
        "hash": hashlib.sha256(data).hexdigest(),
        "location": meta["location"],
        "mimetype": "application/x-gzip",
        "size": len(data),
        "original": {
            "filename": "notes.txt",
            "hash": hashlib.sha256(TEXT).hexdigest(),
            "mimetype": "text/plain",
            "size": len(TEXT),
        },
    }
    assert len(data) < len(TEXT) // 10
    assert stored.uploads.record("r1")["data"]["attachment"] == meta
    if stored.content_type is not None:  # S3: the type of the stored bytes, no encoding
        assert stored.content_type(key) == ("application/x-gzip", None)


def test_collection_can_opt_out(stored):
    stored.uploads.app.put_json("/v1/buckets/b/collections/plain", {}, headers=ALICE)
    meta = stored.uploads.upload(
        "r1", "notes.txt", TEXT, path="/v1/buckets/b/collections/plain/records/r1/attachment"
    ).json
    assert meta["filename"] == "notes.txt"
    assert "original" not in meta
    assert meta["hash"] == hashlib.sha256(TEXT).hexdigest()
    assert stored.read(key_of(meta["location"])) == TEXT


def test_size_limit_applies_to_the_uploaded_bytes(stored):
    zeros = b"\0" * (LIMIT + 1)  # a few dozen bytes once compressed, still refused
    refused = stored.uploads.upload("r1", "zeros.txt", zeros, status=400).json
    assert refused["message"].startswith("body: File size")
    noise = os.urandom(LIMIT)  # larger once "compressed", still accepted
    meta = stored.uploads.upload("r2", "noise.txt", noise).json
    assert meta["original"]["size"] == LIMIT
    assert meta["size"] > LIMIT
    assert gzip.decompress(stored.read(key_of(meta["location"]))) == noise


def test_replacement_removes_the_previous_gzipped_file(stored):
    first = stored.uploads.upload("r1", "a.txt", TEXT).json
    second = stored.uploads.upload("r1", "a.txt", TEXT).json
    assert first["hash"] == second["hash"]  # same bytes in, same bytes stored
    assert first["location"] != second["location"]
    assert stored.keys() == {key_of(second["location"])}
