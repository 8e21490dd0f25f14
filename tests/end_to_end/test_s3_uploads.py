"""End-to-end on S3: an ini file from the older plugin's days (``aws.host``, ``aws.port``,
``aws.is_secure``, ``aws.use_path_style``) starts under gunicorn and works against moto's
server; ``location`` URLs resolve to the objects; large uploads stream."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..helpers.live_server import (
    COLLECTION_PATH,
    KINTO_APP_SETTINGS,
    PLUGIN_ERA_LOGGING,
    Kinto,
    MiB,
    assert_metadata,
    ini_section,
    random_file,
    streamed_upload,
    wait_until,
    write_ini,
)
from ..helpers.raw_http import connect, file_part_head, upload_head
from ..helpers.s3 import HOST, bucket_keys, pending_uploads
from ..helpers.servers import start_gunicorn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seed_era(moto, tmp_path_factory) -> Iterator[tuple[Kinto, str]]:
    tmp = tmp_path_factory.mktemp("seed-era")
    bucket = moto.new_bucket()
    settings = {
        **KINTO_APP_SETTINGS,
        "kinto.includes": "kinto.plugins.default_bucket kinto_attachment",
        "kinto.attachment.aws.access_key": "testing",
        "kinto.attachment.aws.secret_key": "testing",
        "kinto.attachment.aws.bucket_name": bucket,
        "kinto.attachment.aws.acl": "public-read",
        "kinto.attachment.aws.host": HOST,
        "kinto.attachment.aws.port": str(moto.port),
        "kinto.attachment.aws.is_secure": "false",
        "kinto.attachment.aws.use_path_style": "true",
        "kinto.attachment.aws.timeout": "5",
        "kinto.attachment.aws.num_retries": "1",
        "kinto.attachment.base_url": f"{moto.url}/{bucket}/",
        "kinto.attachment.folder": "{bucket_id}/{collection_id}",
        "kinto.attachment.extensions": "any",
        "kinto.attachment.resources.b.gz.gzipped": "true",
    }
    ini = write_ini(tmp / "kinto.ini", ini_section("app:main", settings), PLUGIN_ERA_LOGGING)
    # No region in those files, and no AWS configuration on this machine to fall back on.
    env = {"AWS_CONFIG_FILE": str(tmp / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none")}
    server = start_gunicorn(
        ["kinto_attachment_mw.wsgi:application", "--timeout", "120"],
        tmp / "gunicorn.log",
        env={"KINTO_INI": str(ini), **env},
    )
    try:
        kinto = Kinto(server)
        kinto.create_collection()
        yield kinto, bucket
    finally:
        server.stop()


def test_seed_era_ini_starts_uploads_and_serves(seed_era, moto):
    kinto, bucket = seed_era
    assert kinto.request("GET", "/v1/__heartbeat__").json()["attachments"] is True
    content = b"plugin-era ini, S3 storage\n"
    meta = assert_metadata(
        kinto.upload("r1", "notes.txt", content, "text/plain"), "notes.txt", content
    )
    assert meta["location"].startswith(f"{moto.url}/{bucket}/b/c/")
    fetched = requests.get(meta["location"], timeout=30)  # anonymous: public-read
    assert fetched.status_code == 200
    assert fetched.content == content
    assert fetched.headers["Content-Type"] == "text/plain"

    kinto.request("DELETE", f"{COLLECTION_PATH}/records/r1/attachment")
    assert requests.get(meta["location"], timeout=30).status_code in (403, 404)


def test_seed_era_gzipped_collection(seed_era, moto):
    kinto, bucket = seed_era
    kinto.create_collection("/v1/buckets/b/collections/gz")
    content = b"squeeze me " * 1000
    response = kinto.upload(
        "g1", "s.txt", content, "text/plain", collection="/v1/buckets/b/collections/gz"
    )
    meta = response.json()
    assert meta["filename"] == "s.txt.gz"
    fetched = requests.get(meta["location"], timeout=30)
    assert fetched.headers["Content-Type"] == "application/x-gzip"
    assert "Content-Encoding" not in fetched.headers
    assert gzip.decompress(fetched.content) == content


def test_large_upload_streams_to_s3(seed_era, moto, tmp_path: Path):
    """64 MiB through 8 MiB parts: the worker never holds the file. Two parts are held
    at once (one filling, one in flight), so the bound is looser than on disk.

    A first multipart upload settles what the process sets up once (the sender thread,
    more pooled connections to S3) before the memory is measured.
    """
    kinto, bucket = seed_era
    kinto.upload("warm-up-parts", "w.bin", os.urandom(9 * MiB))
    source = tmp_path / "big.csv"
    expected = random_file(source, 64 * MiB)
    response, growth = streamed_upload(kinto, "big", source)
    assert response.status_code == 201, response.text
    assert response.json()["hash"] == expected
    assert growth < 48 * MiB, f"worker RSS grew by {growth / MiB:.1f} MiB"
    assert pending_uploads(moto.client, bucket) == []
    key = response.json()["location"].split(f"/{bucket}/", 1)[1]
    assert key in bucket_keys(moto.client, bucket)


def test_client_gone_mid_upload_aborts_the_multipart_upload(seed_era, moto):
    """The client announces 32 MiB and leaves after 12: the parts already in S3 go with
    the aborted upload, no object appears, no record is made."""
    kinto, bucket = seed_era
    before = bucket_keys(moto.client, bucket)
    head = upload_head(kinto.server, "gone", 32 * MiB) + file_part_head("gone.bin")
    with connect(kinto.server) as sock:
        sock.sendall(head)
        for _ in range(12):
            sock.sendall(os.urandom(MiB))
        assert wait_until(lambda: pending_uploads(moto.client, bucket)), "no part went up"
    assert wait_until(lambda: not pending_uploads(moto.client, bucket))
    assert bucket_keys(moto.client, bucket) == before
    assert kinto.record("gone").status_code == 404
