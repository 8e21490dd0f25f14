"""End-to-end on Google Cloud Storage: an ini written for the kinto-attachment plugin 9.0.1
(``gcloud.*``, empty credentials, relative locations) starts unchanged under gunicorn and
works against fake-gcs-server, reached through ``STORAGE_EMULATOR_HOST`` as the plugin
reaches it; ``location`` resolves to the objects; large uploads stream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..helpers.gcs import PROJECT
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
from ..helpers.servers import start_gunicorn

pytestmark = pytest.mark.integration

CACHE_CONTROL = "public, max-age=3600"


class PluginDeployment:
    """gunicorn on the plugin's ini, and where its files can be downloaded from."""

    def __init__(self, kinto: Kinto, fake_gcs, bucket: str):
        self.kinto, self.fake_gcs, self.bucket = kinto, fake_gcs, bucket
        hello = kinto.request("GET", "/v1/").json()
        self.files_url = hello["capabilities"]["attachments"]["base_url"]

    def download(self, location: str) -> requests.Response:
        """As clients do with relative locations: the capability's base_url before it."""
        assert "://" not in location, location
        return requests.get(self.files_url + location, timeout=30)

    def keys(self) -> set[str]:
        return self.fake_gcs.keys(self.bucket)

    def delete(self, path: str, status: int = 200) -> None:
        response = self.kinto.request("DELETE", path)
        assert response.status_code == status, response.text


@pytest.fixture(scope="module")
def plugin_gcs(fake_gcs, tmp_path_factory) -> Iterator[PluginDeployment]:
    tmp = tmp_path_factory.mktemp("plugin-gcs")
    bucket = fake_gcs.new_bucket()
    settings = {
        **KINTO_APP_SETTINGS,
        "kinto.includes": "kinto.plugins.flush kinto_attachment",
        "kinto.attachment.gcloud.credentials": "",
        "kinto.attachment.gcloud.project": PROJECT,
        "kinto.attachment.gcloud.bucket_name": bucket,
        "kinto.attachment.gcloud.acl": "publicRead",
        "kinto.attachment.gcloud.cache_control": CACHE_CONTROL,
        "kinto.attachment.base_url": "",
        "kinto.attachment.extra.base_url": f"{fake_gcs.url}/{bucket}",
        "kinto.attachment.folder": "{bucket_id}/{collection_id}",
        "kinto.attachment.keep_old_files": "false",
        "kinto.attachment.max_size_bytes": str(200 * MiB),
        "kinto.attachment.extensions": "default+bin+ftl",
        "kinto.attachment.mimetypes": ".ftl:application/vnd.fluent",
    }
    ini = write_ini(tmp / "kinto.ini", ini_section("app:main", settings), PLUGIN_ERA_LOGGING)
    server = start_gunicorn(
        ["kinto_attachment_mw.wsgi:application", "--timeout", "120"],
        tmp / "gunicorn.log",
        env={"KINTO_INI": str(ini), "STORAGE_EMULATOR_HOST": fake_gcs.url},
    )
    try:
        kinto = Kinto(server)
        kinto.create_collection()
        yield PluginDeployment(kinto, fake_gcs, bucket)
    finally:
        server.stop()


def test_plugin_ini_uploads_replaces_serves_and_deletes(plugin_gcs):
    kinto = plugin_gcs.kinto
    assert kinto.request("GET", "/v1/__heartbeat__").json()["attachments"] is True
    content = b"plugin 9.0.1 ini, GCS storage\n"
    meta = assert_metadata(
        kinto.upload("r1", "notes.txt", content, "text/plain"), "notes.txt", content
    )
    assert meta["location"].startswith("b/c/")
    fetched = plugin_gcs.download(meta["location"])  # anonymous: publicRead
    assert fetched.status_code == 200
    assert fetched.content == content
    assert fetched.headers["Content-Type"] == "text/plain"
    assert fetched.headers["Cache-Control"] == CACHE_CONTROL
    blob = plugin_gcs.fake_gcs.client.bucket(plugin_gcs.bucket).get_blob(meta["location"])
    assert blob.metadata["record"] == "/buckets/b/collections/c/records/r1"
    assert blob.metadata["hash"] == meta["hash"]

    fluent = kinto.upload("r1", "app.ftl", b"hello = Hello\n").json()
    assert fluent["mimetype"] == "application/vnd.fluent"
    assert plugin_gcs.keys() == {fluent["location"]}

    kinto.request("DELETE", f"{COLLECTION_PATH}/records/r1/attachment")
    assert plugin_gcs.download(fluent["location"]).status_code == 404
    assert plugin_gcs.keys() == set()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(f"{COLLECTION_PATH}/records/r2", id="record"),
        pytest.param(COLLECTION_PATH, id="collection"),
        pytest.param("/v1/buckets/b", id="bucket"),
        pytest.param("/v1/__flush__", id="flush"),
    ],
)
def test_deletes_and_flush_remove_the_objects(plugin_gcs, path):
    kinto = plugin_gcs.kinto
    kinto.create_collection()
    kinto.upload("r2", "two.txt", b"two")
    kinto.upload("r3", "three.txt", b"three")
    assert len(plugin_gcs.keys()) == 2
    if path == "/v1/__flush__":
        assert kinto.request("POST", path).status_code == 202
    else:
        plugin_gcs.delete(path)
    remaining = plugin_gcs.keys()
    assert len(remaining) == (1 if path.endswith("/r2") else 0)
    for key in remaining:
        plugin_gcs.fake_gcs.client.bucket(plugin_gcs.bucket).delete_blob(key)


def test_a_vanished_object_is_no_error(plugin_gcs):
    """Where the plugin answers 500 (``NotFound`` uncaught), deleting or replacing an
    attachment whose object is gone succeeds."""
    kinto = plugin_gcs.kinto
    kinto.create_collection()
    gcs_bucket = plugin_gcs.fake_gcs.client.bucket(plugin_gcs.bucket)
    for step in ("replace", "remove", "record"):
        location = kinto.upload("v1", "v.txt", b"vanishing").json()["location"]
        gcs_bucket.delete_blob(location)
        if step == "replace":
            assert kinto.upload("v1", "v.txt", b"again").status_code == 200
        elif step == "remove":
            response = kinto.request("DELETE", f"{COLLECTION_PATH}/records/v1/attachment")
            assert response.status_code == 204, response.text
        else:
            plugin_gcs.delete(f"{COLLECTION_PATH}/records/v1")
    assert plugin_gcs.keys() == set()


def test_large_upload_streams_to_gcs(plugin_gcs, tmp_path: Path):
    """64 MiB through 4 MiB chunks of a resumable upload: the worker never holds the
    file (two chunks at once, one filling, one in flight)."""
    kinto = plugin_gcs.kinto
    kinto.create_collection()
    kinto.upload("warm-up-chunks", "w.bin", os.urandom(9 * MiB))
    source = tmp_path / "big.csv"
    expected = random_file(source, 64 * MiB)
    response, growth = streamed_upload(kinto, "big", source)
    assert response.status_code == 201, response.text
    assert response.json()["hash"] == expected
    assert growth < 24 * MiB, f"worker RSS grew by {growth / MiB:.1f} MiB"
    assert plugin_gcs.download(response.json()["location"]).content == source.read_bytes()


def test_client_gone_mid_upload_cancels_the_resumable_upload(plugin_gcs):
    """The client announces 32 MiB and leaves after 12: no object appears, no record."""
    kinto = plugin_gcs.kinto
    kinto.create_collection()
    before = plugin_gcs.keys()
    head = upload_head(kinto.server, "gone", 32 * MiB) + file_part_head("gone.bin")
    with connect(kinto.server) as sock:
        sock.sendall(head)
        for _ in range(12):
            sock.sendall(os.urandom(MiB))
    assert wait_until(lambda: "Resumable upload of b/c/" in kinto.server.log())
    assert "cancelled" in kinto.server.log()
    assert kinto.record("gone").status_code == 404
    assert plugin_gcs.keys() == before
