"""tuspy, a tus client users run, against gunicorn with two workers on PostgreSQL: an
upload interrupted after a few chunks is resumed by another process from its URL and ends
with the record describing the file, on local storage, S3 and GCS."""

from __future__ import annotations

import base64
import gc
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError
from tusclient.storage.filestorage import FileStorage

from ..helpers.gcs import gcs_attachment_settings
from ..helpers.kinto_apps import files_under, s3_kinto_settings
from ..helpers.postgres import kinto_postgresql_settings, write_kinto_ini
from ..helpers.servers import HOST, GunicornServer, free_port, start_gunicorn
from ..helpers.spool import spool_leftovers
from ..helpers.system_packages import require

pytestmark = pytest.mark.integration

USER = ("alice", "secret")
AUTHORIZATION = "Basic " + base64.b64encode(b"alice:secret").decode()
COLLECTION = "/v1/buckets/b/collections/c"
MiB = 1024 * 1024
RESUME = """
import sys
from tusclient import client
url, location, path = sys.argv[1:4]
uploader = client.TusClient(url, headers={"Authorization": sys.argv[4]}).uploader(
    file_path=path, url=location, chunk_size=1024 * 1024
)
uploader.upload()
print(uploader.offset)
"""


@dataclass
class Deployment:
    url: str
    files: Callable[[], set[str]]
    spool: Path
    gunicorn: GunicornServer


@pytest.fixture(params=["local", "s3", "gcs"])
def server(request, postgres_url, tmp_path: Path):
    port = free_port()
    spool = tmp_path / "spool"
    storage = {
        "kinto.attachment.base_path": str(tmp_path / "attachments"),
        "kinto.attachment.resumable.spool_path": str(spool),
        "kinto.attachment.extensions": "any",
    }
    files = lambda: files_under(tmp_path / "attachments")  # noqa: E731
    if request.param == "s3":
        moto = request.getfixturevalue("moto")
        bucket = moto.new_bucket()
        storage = {
            key: value
            for key, value in s3_kinto_settings(bucket, moto.url).items()
            if key.startswith("kinto.attachment.")
        }
        storage["kinto.attachment.resumable.spool_path"] = str(spool)
        storage["kinto.attachment.extensions"] = "any"
        files = lambda: {  # noqa: E731
            item["Key"] for item in moto.client.list_objects_v2(Bucket=bucket).get("Contents", [])
        }
    if request.param == "gcs":
        fake_gcs = request.getfixturevalue("fake_gcs")
        bucket = fake_gcs.new_bucket()
        storage = {
            **gcs_attachment_settings(bucket, fake_gcs.url),
            "kinto.attachment.resumable.spool_path": str(spool),
            "kinto.attachment.extensions": "any",
        }
        files = lambda: fake_gcs.keys(bucket)  # noqa: E731
    ini = write_kinto_ini(
        tmp_path, kinto_postgresql_settings(postgres_url), f"http://{HOST}:{port}/files/", storage
    )
    args = ["kinto_attachment_mw.wsgi:application", "--workers", "2"]
    args += ["--worker-class", "gthread", "--threads", "2"]
    gunicorn = start_gunicorn(
        args, tmp_path / "gunicorn.log", port=port, env={"KINTO_INI": str(ini)}
    )
    try:
        url = gunicorn.url
        for path in ("/v1/buckets/b", COLLECTION):
            requests.put(url + path, json={}, auth=USER, timeout=30).raise_for_status()
        yield Deployment(url, files, spool, gunicorn)
    finally:
        gunicorn.stop()


def test_an_interrupted_upload_is_resumed_by_another_process(server, tmp_path):
    url, files = server.url, server.files
    source = tmp_path / "model.bin"
    content = os.urandom(5 * MiB + 123)
    source.write_bytes(content)
    endpoint = f"{url}{COLLECTION}/records/r1/attachment"
    with open(source, "rb") as stream:
        first = tus.TusClient(endpoint, headers={"Authorization": AUTHORIZATION}).uploader(
            file_stream=stream, chunk_size=MiB, metadata={"filename": "model.bin"}
        )
        for _ in range(2):
            first.upload_chunk()
    assert first.offset == 2 * MiB  # the first client stops here
    resumed = subprocess.run(
        [sys.executable, "-c", RESUME, endpoint, first.url, str(source), AUTHORIZATION],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == [str(len(content))]
    record = requests.get(f"{url}{COLLECTION}/records/r1", auth=USER, timeout=30).json()
    attachment = record["data"]["attachment"]
    assert attachment["hash"] == hashlib.sha256(content).hexdigest()
    assert attachment["size"] == len(content)
    assert attachment["filename"] == "model.bin"
    assert len(files()) == 1
    assert spool_leftovers(server.spool) == []


def test_checksummed_chunks_from_tuspy(server, tmp_path):
    url = server.url
    source = tmp_path / "notes.txt"
    content = b"line\n" * 300_000
    source.write_bytes(content)
    with open(source, "rb") as stream:
        uploader = tus.TusClient(
            f"{url}{COLLECTION}/records/r2/attachment", headers={"Authorization": AUTHORIZATION}
        ).uploader(
            file_stream=stream,
            chunk_size=MiB,
            metadata={"filename": "notes.txt"},
            upload_checksum=True,
        )
        uploader.upload()
    record = requests.get(f"{url}{COLLECTION}/records/r2", auth=USER, timeout=30).json()
    assert record["data"]["attachment"]["hash"] == hashlib.sha256(content).hexdigest()
    assert spool_leftovers(server.spool) == []


def test_a_patch_cut_mid_body_keeps_what_arrived(server, tmp_path):
    """The connection drops half-way through a PATCH: the bytes that arrived are kept,
    HEAD says how many, and the upload goes on from there."""
    url = server.url
    content = os.urandom(3 * MiB)
    endpoint = f"{url}{COLLECTION}/records/r3/attachment"
    created = requests.post(
        endpoint,
        headers={
            "Authorization": AUTHORIZATION,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(content)),
            "Upload-Metadata": "filename " + base64.b64encode(b"cut.bin").decode(),
        },
        timeout=30,
    )
    location = created.headers["Location"]
    path = location.split(url, 1)[1]
    sock = socket.create_connection((HOST, int(url.rsplit(":", 1)[1])), timeout=30)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {AUTHORIZATION}\r\n"
        "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {len(content)}\r\n\r\n"
    ).encode()
    sock.sendall(head + content[: MiB + 4321])
    time.sleep(0.5)
    sock.close()  # cut: the rest never comes
    tus_headers = {"Authorization": AUTHORIZATION, "Tus-Resumable": "1.0.0"}
    offset = 0
    for _ in range(50):
        offset = int(
            requests.head(location, headers=tus_headers, timeout=30).headers["Upload-Offset"]
        )
        if offset == MiB + 4321:
            break
        time.sleep(0.1)
    assert offset == MiB + 4321
    finish(server, location, content, offset, "r3")


def finish(server: Deployment, location: str, content: bytes, offset: int, record_id: str):
    """Send the rest of ``content`` from ``offset``; the record then describes it all, and
    the spool is empty."""
    rest = requests.patch(
        location,
        data=content[offset:],
        headers={
            "Authorization": AUTHORIZATION,
            "Tus-Resumable": "1.0.0",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
        },
        timeout=60,
    )
    assert rest.status_code == 204, rest.text
    record = requests.get(
        f"{server.url}{COLLECTION}/records/{record_id}", auth=USER, timeout=30
    ).json()
    assert record["data"]["attachment"]["hash"] == hashlib.sha256(content).hexdigest()
    assert spool_leftovers(server.spool) == []


NODE_CLIENTS = Path(__file__).resolve().parents[1] / "node"


@pytest.fixture(scope="module")
def tus_js() -> Path:
    """tus-js-client 4.3.1 from npm (``make install-test`` installs it; here too if not)."""
    require("node")
    if not (NODE_CLIENTS / "node_modules" / "tus-js-client").is_dir():
        subprocess.run(
            ["npm", "install", "--prefix", str(NODE_CLIENTS), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_CLIENTS / "tus_upload.js"


def node(script: Path, *args: str) -> list[str]:
    done = subprocess.run(["node", str(script), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_tus_js_client_stopped_then_resumed_by_another_process(server, tus_js, tmp_path):
    url = server.url
    source = tmp_path / "model.bin"
    content = os.urandom(4 * MiB + 77)
    source.write_bytes(content)
    endpoint = f"{url}{COLLECTION}/records/r4/attachment"
    location, stopped, at = node(tus_js, endpoint, str(source), AUTHORIZATION, "", str(2 * MiB))
    assert stopped == "stopped" and int(at) == 2 * MiB
    assert location.startswith(f"{endpoint}/uploads/")
    resumed_location, done, size = node(tus_js, endpoint, str(source), AUTHORIZATION, location)
    assert (resumed_location, done, int(size)) == (location, "done", len(content))
    record = requests.get(f"{url}{COLLECTION}/records/r4", auth=USER, timeout=30).json()
    assert record["data"]["attachment"]["hash"] == hashlib.sha256(content).hexdigest()
    assert spool_leftovers(server.spool) == []


# tuspy needs a file path for its URL storage (it closes a given stream to fingerprint
# it) and then leaves that file open.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_tuspys_url_storage_cannot_pass_one_records_upload_for_anothers(server, tmp_path):
    """tuspy 1.1.0 keys stored URLs by file content alone: the same file sent to a second
    record looks up the first record's upload. That one is gone once finished, so tuspy
    fails loudly (404) instead of reporting a success it did not have."""
    url = server.url
    source = tmp_path / "same.txt"
    source.write_bytes(b"the same file\n" * 1000)
    urls = FileStorage(str(tmp_path / "tuspy-urls.json"))

    def send(record_id: str) -> None:
        tus.TusClient(
            f"{url}{COLLECTION}/records/{record_id}/attachment",
            headers={"Authorization": AUTHORIZATION},
        ).uploader(
            file_path=str(source),
            metadata={"filename": "same.txt"},
            store_url=True,
            url_storage=urls,
        ).upload()

    send("r5")
    with pytest.raises(TusCommunicationError):
        send("r6")
    r6 = requests.get(f"{url}{COLLECTION}/records/r6", auth=USER, timeout=30)
    assert r6.status_code == 404
    urls._db.close()
    gc.collect()  # tuspy's open files are closed here, under this test's warning filters


def test_a_worker_killed_mid_patch_loses_nothing_that_was_kept(server, tmp_path):
    """The worker writing a PATCH dies (SIGKILL): what reached the spool stays, HEAD says
    how much, and the upload goes on from there with another worker."""
    url = server.url
    content = os.urandom(3 * MiB)
    tus_headers = {"Authorization": AUTHORIZATION, "Tus-Resumable": "1.0.0"}
    created = requests.post(
        f"{url}{COLLECTION}/records/r7/attachment",
        headers={
            **tus_headers,
            "Upload-Length": str(len(content)),
            "Upload-Metadata": "filename " + base64.b64encode(b"killed.bin").decode(),
        },
        timeout=30,
    )
    location = created.headers["Location"]
    workers = set(server.gunicorn.worker_pids())
    sock = socket.create_connection((HOST, int(url.rsplit(":", 1)[1])), timeout=30)
    sock.sendall(
        (
            f"PATCH {location.split(url, 1)[1]} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Authorization: {AUTHORIZATION}\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: 0\r\nContent-Length: {len(content)}\r\n\r\n"
        ).encode()
        + content[: 2 * MiB]
    )
    time.sleep(0.5)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    sock.close()
    for _ in range(100):
        replaced = set(server.gunicorn.worker_pids())
        if len(replaced) == 2 and not replaced & workers:
            break
        time.sleep(0.1)
    head = requests.head(location, headers=tus_headers, timeout=30)
    offset = int(head.headers["Upload-Offset"])
    assert 0 <= offset <= 2 * MiB
    finish(server, location, content, offset, "r7")
