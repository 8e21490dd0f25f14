"""The upload and download tools against a real server (gunicorn, Kinto, middleware).

They run in-process through their command-line entry point, except where the point is
what a user sees on the terminal: those run the installed ``kinto-attachment`` script.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kinto_http import Client

from kinto_attachment_mw.tools import resumable
from kinto_attachment_mw.tools.cli import main
from kinto_attachment_mw.tools.errors import http_message
from kinto_attachment_mw.tools.records import CLIENT_GZIP_FIELD, record_id_for

from ..helpers.live_server import Kinto, kinto_ini_server
from ..helpers.servers import free_port

pytestmark = pytest.mark.integration

SCRIPT = str(Path(sys.executable).with_name("kinto-attachment"))
#: Files of this collection of the tools' server are private.
PRIVATE_COLLECTION = "secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[Kinto, Path]]:
    tmp = tmp_path_factory.mktemp("tools")
    gunicorn, root = kinto_ini_server(
        tmp,
        attachment={
            "kinto.attachment.extensions": "default+archives",
            f"kinto.attachment.resources.b.{PRIVATE_COLLECTION}.private": "true",
        },
    )
    try:
        yield Kinto(gunicorn), root
    finally:
        gunicorn.stop()


class Collection:
    """A fresh collection of bucket ``b`` and the tools' arguments to reach it."""

    def __init__(self, kinto: Kinto, name: str):
        self.kinto = kinto
        self.path = f"/v1/buckets/b/collections/{name}"
        kinto.create_collection(self.path)
        self.args = [
            "--server",
            f"{kinto.url}/v1",
            "--bucket",
            "b",
            "--collection",
            name,
            "--auth",
            "alice:secret",
        ]

    def run(self, capsys, command: str, *extra: str) -> str:
        """Run a tool; its summary line, once checked that the exit code agrees."""
        code = main([command, *self.args, *extra])
        line = capsys.readouterr().out.strip()
        assert code == (0 if line.endswith(" 0 failed") else 1), line
        return line

    def records(self) -> dict[str, dict]:
        response = self.kinto.request("GET", f"{self.path}/records")
        assert response.status_code == 200, response.text
        return {record["id"]: record for record in response.json()["data"]}


@pytest.fixture
def collection(server, request) -> Collection:
    return Collection(server[0], request.node.name.replace("[", "-").rstrip("]"))


def write_files(folder: Path, contents: dict[str, bytes]) -> list[str]:
    folder.mkdir(exist_ok=True)
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    return [str(folder / name) for name in contents]


FILES = {
    "notes.txt": b"some notes\n" * 1000,
    "table.csv": b"a,b\n1,2\n" * 5000,
    "data.json": os.urandom(300_000),
}


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_upload_then_rerun_skips_and_uploads_only_the_changed_file(collection, capsys, tmp_path):
    paths = write_files(tmp_path / "in", FILES)
    assert collection.run(capsys, "upload", *paths) == "3 uploaded, 0 skipped, 0 failed"
    records = collection.records()
    assert set(records) == {record_id_for(name) for name in FILES}
    for name, content in FILES.items():
        attachment = records[record_id_for(name)]["attachment"]
        assert (attachment["filename"], attachment["hash"]) == (name, sha256(content))

    assert collection.run(capsys, "upload", *paths) == "0 uploaded, 3 skipped, 0 failed"

    (tmp_path / "in" / "table.csv").write_bytes(b"changed\n")
    assert collection.run(capsys, "upload", *paths) == "1 uploaded, 2 skipped, 0 failed"
    after = collection.records()
    assert len(after) == 3
    assert after[record_id_for("table.csv")]["attachment"]["hash"] == sha256(b"changed\n")
    assert after[record_id_for("notes.txt")] == records[record_id_for("notes.txt")]

    assert collection.run(capsys, "upload", "--force", *paths) == "3 uploaded, 0 skipped, 0 failed"


def test_ids_from_content_share_a_record_between_copies(collection, capsys, tmp_path):
    paths = write_files(tmp_path / "in", {"one.txt": b"same", "two.txt": b"same"})
    result = collection.run(capsys, "upload", "--id-from", "hash", *paths)
    assert result == "1 uploaded, 1 skipped, 0 failed"
    assert set(collection.records()) == {record_id_for(sha256(b"same"))}


def test_refused_file_is_counted_failed_and_the_rest_uploaded(collection, capsys, tmp_path):
    paths = write_files(tmp_path / "in", {"ok.txt": b"fine", "tool.exe": b"MZ"})
    code = main(["upload", *collection.args, *paths])
    captured = capsys.readouterr()
    assert (code, captured.out.strip()) == (1, "1 uploaded, 0 skipped, 1 failed")
    assert "tool.exe: refused by the server (400): body: File extension is not allowed." in (
        captured.err
    )


def test_gzip_round_trip(collection, capsys, tmp_path):
    content = b"compress me please\n" * 20000
    paths = write_files(tmp_path / "in", {"big.txt": content})
    assert collection.run(capsys, "upload", "--gzip", *paths) == "1 uploaded, 0 skipped, 0 failed"
    record = collection.records()[record_id_for("big.txt")]
    attachment = record["attachment"]
    assert attachment["filename"] == "big.txt.gz"
    assert attachment["size"] < len(content) / 10
    assert record[CLIENT_GZIP_FIELD]["hash"] == sha256(content)
    assert record[CLIENT_GZIP_FIELD]["gzip_hash"] == attachment["hash"]

    # The server has this content, compressed or not: nothing to upload either way.
    assert collection.run(capsys, "upload", *paths) == "0 uploaded, 1 skipped, 0 failed"
    assert collection.run(capsys, "upload", "--gzip", *paths).startswith("0 uploaded, 1 skipped")

    out = tmp_path / "out"
    assert collection.run(capsys, "download", "--folder", str(out)) == (
        "1 downloaded, 0 skipped, 0 failed"
    )
    assert sorted(os.listdir(out)) == ["big.txt"]
    assert (out / "big.txt").read_bytes() == content


def test_download_compares_bytes_and_skips_what_is_there(collection, capsys, tmp_path):
    write = write_files(tmp_path / "in", FILES)
    collection.run(capsys, "upload", *write)
    out = tmp_path / "out"
    expected = "3 downloaded, 0 skipped, 0 failed"
    assert collection.run(capsys, "download", "--folder", str(out)) == expected
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == FILES

    assert collection.run(capsys, "download", "--folder", str(out)) == (
        "0 downloaded, 3 skipped, 0 failed"
    )
    (out / "notes.txt").unlink()
    (out / "table.csv").write_bytes(b"edited locally")
    assert collection.run(capsys, "download", "--folder", str(out)) == (
        "2 downloaded, 1 skipped, 0 failed"
    )
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == FILES


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_downloaded_files_get_the_mode_of_any_new_file(collection, capsys, tmp_path, umask, mode):
    collection.run(capsys, "upload", *write_files(tmp_path / "in", {"a.txt": b"a"}))
    collection.run(capsys, "upload", "--gzip", *write_files(tmp_path / "gz", {"b.txt": b"b"}))
    previous = os.umask(umask)
    try:
        collection.run(capsys, "download", "--folder", str(tmp_path / "out"))
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "out").iterdir()}
    assert modes == {"a.txt": mode, "b.txt": mode}


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate"])
def test_download_refuses_a_corrupted_stored_file(server, collection, capsys, tmp_path, damage):
    _, root = server
    paths = write_files(tmp_path / "in", {"good.txt": b"good " * 1000, "bad.txt": b"bad " * 1000})
    collection.run(capsys, "upload", *paths)
    record = collection.records()[record_id_for("bad.txt")]
    path = root / record["attachment"]["location"].split("/attachments/", 1)[1]
    stored = bytearray(path.read_bytes())
    if damage == "flip-a-byte":
        stored[100] ^= 0xFF
    else:
        del stored[-10:]
    path.write_bytes(bytes(stored))

    out = tmp_path / "out"
    code = main(["download", *collection.args, "--folder", str(out)])
    captured = capsys.readouterr()
    assert (code, captured.out.strip()) == (1, "1 downloaded, 0 skipped, 1 failed")
    reason = "SHA-256" if damage == "flip-a-byte" else "bytes, the record says"
    assert "failed: bad.txt: the downloaded file" in captured.err
    assert reason in captured.err
    assert os.listdir(out) == ["good.txt"]  # nothing kept, no temporary file left


def attach_original(kinto: Kinto, collection: Collection, name: str, content: bytes, **changes):
    """A record shaped like the server's ``gzipped`` option makes it: the stored file is
    the gzip, ``attachment.original`` describes the uncompressed upload."""
    packed = gzip.compress(content)
    record_id = record_id_for(name)
    path = f"{collection.path}/records/{record_id}"
    response = kinto.upload(record_id, name + ".gz", packed, "application/gzip", collection.path)
    assert response.status_code == 201, response.text
    original = {"filename": name, "hash": sha256(content), "mimetype": "text/plain"}
    attachment = {**response.json(), "original": {**original, "size": len(content), **changes}}
    patched = kinto.request("PATCH", path, json={"data": {"attachment": attachment}})
    assert patched.status_code == 200, patched.text


def test_download_decompresses_and_checks_attachment_original(server, collection, capsys, tmp_path):
    kinto, _ = server
    content = b"stored gzipped by the server\n" * 500
    attach_original(kinto, collection, "kept.txt", content)
    attach_original(kinto, collection, "lying.txt", b"x" * 100, hash=sha256(b"y" * 100))

    out = tmp_path / "out"
    code = main(["download", *collection.args, "--folder", str(out)])
    captured = capsys.readouterr()
    assert (code, captured.out.strip()) == (1, "1 downloaded, 0 skipped, 1 failed")
    assert "failed: lying.txt: the decompressed file does not match the SHA-256" in captured.err
    assert os.listdir(out) == ["kept.txt"]
    assert (out / "kept.txt").read_bytes() == content
    assert collection.run(capsys, "upload", str(out / "kept.txt")).startswith("0 uploaded, 1 ")


# What a user sees when the run cannot start: one line, exit code 2, no traceback.


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr


def test_wrong_credentials(collection, tmp_path):
    args = [*collection.args[:-1], "mallory:guess"]
    result = run_script("download", *args, "--folder", str(tmp_path))
    assert_one_line_error(result, "access denied to b/")
    assert "check --bucket, --collection and --auth" in result.stderr


def test_unknown_bucket_and_collection(collection, tmp_path):
    args = list(collection.args)
    args[3] = "nope"
    assert_one_line_error(
        run_script("download", *args, "--folder", str(tmp_path)), "access denied to nope/"
    )
    args[3], args[5] = "b", "missing"
    assert_one_line_error(
        run_script("download", *args, "--folder", str(tmp_path)),
        "collection 'missing' not found in bucket 'b'",
    )


def test_upload_creates_a_missing_bucket_and_collection(collection, capsys, tmp_path):
    """As the plugin's own upload script does."""
    args = list(collection.args)
    args[3], args[5] = "new-bucket", "new-collection"
    paths = write_files(tmp_path / "in", {"a.txt": b"a"})
    assert main(["upload", *args, *paths]) == 0
    assert capsys.readouterr().out.strip() == "1 uploaded, 0 skipped, 0 failed"
    path = "/v1/buckets/new-bucket/collections/new-collection/records"
    (record,) = collection.kinto.request("GET", path).json()["data"]
    assert record["attachment"]["hash"] == sha256(b"a")


def test_upload_into_a_bucket_of_someone_else_says_access_denied(collection, tmp_path):
    args = [*collection.args[:-1], "mallory:guess"]
    paths = write_files(tmp_path / "in", {"a.txt": b"a"})
    assert_one_line_error(run_script("upload", *args, *paths), "access denied to b/")


def test_unreachable_server(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    args = ["--server", url, "--bucket", "b", "--collection", "c", "--auth", "a:b"]
    result = run_script("download", *args, "--folder", str(tmp_path))
    assert_one_line_error(result, f"cannot reach the server at {url}")


def test_server_errors_read_as_one_line():
    body = {"code": 503, "message": "Service temporary unavailable due to overloading"}
    assert http_message(503, body, "b", "c") == (
        "server error 503: Service temporary unavailable due to overloading"
    )


@pytest.fixture(scope="module")
def gzip_server(tmp_path_factory) -> Iterator[Kinto]:
    gunicorn, _ = kinto_ini_server(
        tmp_path_factory.mktemp("tools-gzip"), attachment={"kinto.attachment.gzipped": "true"}
    )
    try:
        yield Kinto(gunicorn)
    finally:
        gunicorn.stop()


def test_server_side_gzip_round_trip(gzip_server, capsys, tmp_path):
    collection = Collection(gzip_server, "gzipped")
    content = b"gzip me on the server\n" * 5000
    paths = write_files(tmp_path / "in", {"big.txt": content})
    assert collection.run(capsys, "upload", *paths) == "1 uploaded, 0 skipped, 0 failed"
    attachment = collection.records()[record_id_for("big.txt")]["attachment"]
    assert attachment["filename"] == "big.txt.gz"
    assert attachment["original"]["hash"] == sha256(content)
    assert attachment["size"] < len(content)
    assert collection.run(capsys, "upload", *paths) == "0 uploaded, 1 skipped, 0 failed"
    out = tmp_path / "out"
    summary = collection.run(capsys, "download", "--folder", str(out))
    assert summary == "1 downloaded, 0 skipped, 0 failed"
    assert os.listdir(out) == ["big.txt"]
    assert (out / "big.txt").read_bytes() == content


def test_resumable_upload_goes_on_where_a_cut_run_stopped(
    collection, capsys, tmp_path, monkeypatch
):
    """A run cut after its first piece leaves the upload on the server; the next run asks
    where it stands and sends only the rest, to the same upload."""
    monkeypatch.setattr(resumable, "PIECE", 1024 * 1024)
    content = os.urandom(3 * 1024 * 1024 + 5)
    files = write_files(tmp_path / "in", {"model.zip": content})
    state = tmp_path / "uploads.json"
    sent = []
    real_request = resumable._request

    def cut_after_one_piece(remote, method, url, **kwargs):
        sent.append(method)
        if method == "PATCH" and sent.count("PATCH") == 2:
            raise remote.failure(requests.exceptions.ConnectionError("cut"))
        return real_request(remote, method, url, **kwargs)

    monkeypatch.setattr(resumable, "_request", cut_after_one_piece)
    options = ["--resumable", "--state", str(state), *files]
    assert collection.run(capsys, "upload", *options).endswith("1 failed")
    assert len(json.loads(state.read_text())) == 1  # the upload, left unfinished
    sent.clear()
    monkeypatch.setattr(
        resumable,
        "_request",
        lambda *args, **kwargs: sent.append(args[1]) or real_request(*args, **kwargs),
    )
    assert collection.run(capsys, "upload", *options).endswith("0 failed")
    assert sent.count("POST") == 0 and sent.count("HEAD") == 1  # resumed, not restarted
    assert sent.count("PATCH") == 3  # the 2 MiB and 5 bytes left, not the first MiB
    attachment = collection.records()[record_id_for("model.zip")]["attachment"]
    assert attachment["hash"] == sha256(content) and attachment["filename"] == "model.zip"
    assert json.loads(state.read_text()) == {}


def test_resumable_and_gzip_are_one_or_the_other(collection, capsys, tmp_path):
    files = write_files(tmp_path / "in", {"a.txt": b"a"})
    code = main(["upload", *collection.args, "--resumable", "--gzip", *files])
    assert code == 2
    assert "--resumable and --gzip" in capsys.readouterr().err


def test_private_files_download_with_the_credentials(server, capsys, tmp_path):
    """A private file's location is its record's download URL: the tool follows it with
    the credentials it was given; kinto-http's ``download_attachment`` sends none."""
    kinto = server[0]
    collection = Collection(kinto, PRIVATE_COLLECTION)
    assert collection.run(capsys, "upload", *write_files(tmp_path / "in", FILES)) == (
        "3 uploaded, 0 skipped, 0 failed"
    )
    record = collection.records()[record_id_for("notes.txt")]
    location = record["attachment"]["location"]
    assert location.startswith(f"{kinto.url}{collection.path}/records/{record['id']}/attachment?")
    assert requests.get(location, timeout=30).status_code == 401
    out = tmp_path / "out"
    assert collection.run(capsys, "download", "--folder", str(out)) == (
        "3 downloaded, 0 skipped, 0 failed"
    )
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == FILES

    client = Client(
        server_url=f"{kinto.url}/v1",
        auth=("alice", "secret"),
        bucket="b",
        collection=PRIVATE_COLLECTION,
    )
    with pytest.raises(requests.HTTPError) as refused:
        client.download_attachment(record, filepath=str(tmp_path / "k.txt"))
    assert refused.value.response.status_code == 401
    # What README tells kinto-http users to do instead:
    answer = requests.get(location, auth=client.session.auth, timeout=30)
    assert answer.content == FILES["notes.txt"]
