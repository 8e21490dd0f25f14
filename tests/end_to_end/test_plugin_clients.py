"""The kinto-attachment plugin's own clients keep working against ``make serve``: the
``upload.py``, ``download.py`` and ``delete.py`` scripts of its 6.4.0 source archive
(fetched from PyPI at run time, never copied here) and kinto-http's attachment calls."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kinto_http import Client

from ..helpers.make_serve import MakeServe, start_make_serve

pytestmark = pytest.mark.integration

PLUGIN = "kinto-attachment==6.4.0"
AUTH = ("alice", "secret")
FILES = {"notes.txt": b"plugin notes\n" * 500, "table.csv": b"a,b\n1,2\n" * 2000}


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@pytest.fixture(scope="module")
def plugin_scripts(tmp_path_factory) -> Path:
    """The plugin's ``scripts/`` folder, from its source archive on PyPI."""
    folder = tmp_path_factory.mktemp("plugin-sdist")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        + ["--no-binary", ":all:", PLUGIN, "--dest", str(folder)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (archive,) = folder.glob("kinto-attachment-*.tar.gz")
    with tarfile.open(archive) as sdist:
        members = [m for m in sdist.getmembers() if "/scripts/" in m.name and m.isfile()]
        sdist.extractall(folder, members=members, filter="data")
    (scripts,) = folder.glob("kinto-attachment-*/scripts")
    return scripts


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[MakeServe]:
    server = start_make_serve(tmp_path_factory.mktemp("make-serve"))
    try:
        yield server
    finally:
        server.stop()


def records(server: MakeServe, bucket: str, collection: str) -> list[dict]:
    path = f"/v1/buckets/{bucket}/collections/{collection}/records"
    response = requests.get(server.url + path, auth=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def run_script(scripts: Path, name: str, server: MakeServe, *args: str, cwd: Path) -> str:
    command = [sys.executable, str(scripts / name), "--server", f"{server.url}/v1"]
    command += ["--auth", "alice:secret", "--bucket", "plugin", "--collection", "scripts"]
    done = subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_plugin_scripts_upload_download_and_delete(plugin_scripts, server, tmp_path):
    sources = tmp_path / "in"
    sources.mkdir()
    for name, content in FILES.items():
        (sources / name).write_bytes(content)

    # upload.py creates the bucket and collection, then one record per file
    run_script(plugin_scripts, "upload.py", server, *sorted(FILES), cwd=sources)
    uploaded = {r["attachment"]["filename"]: r for r in records(server, "plugin", "scripts")}
    assert {name: r["attachment"]["hash"] for name, r in uploaded.items()} == {
        name: sha256(content) for name, content in FILES.items()
    }
    # a second run finds them up to date
    again = run_script(plugin_scripts, "upload.py", server, *sorted(FILES), cwd=sources)
    assert again.count("is up-to-date") == len(FILES)

    run_script(plugin_scripts, "download.py", server, "--folder", "out", cwd=tmp_path)
    assert {name: (tmp_path / "out" / name).read_bytes() for name in FILES} == FILES

    # delete.py asserts that each record's attachment is None afterwards
    run_script(plugin_scripts, "delete.py", server, cwd=tmp_path)
    after = records(server, "plugin", "scripts")
    assert [record["attachment"] for record in after] == [None] * len(FILES)
    for record in uploaded.values():
        assert requests.get(record["attachment"]["location"], timeout=30).status_code == 404


def test_kinto_http_attachment_calls(server, tmp_path):
    client = Client(server_url=f"{server.url}/v1", auth=AUTH, bucket="http", collection="files")
    client.create_bucket(if_not_exists=True)
    client.create_collection(if_not_exists=True)
    source = tmp_path / "report.pdf"
    source.write_bytes(b"%PDF-1.4 a report\n" * 1000)

    attachment = client.add_attachment(id="report", filepath=str(source), data={"year": 2024})
    assert attachment["hash"] == sha256(source.read_bytes())
    record = client.get_record(id="report")["data"]
    assert (record["year"], record["attachment"]) == (2024, attachment)

    target = tmp_path / "downloaded.pdf"
    assert client.download_attachment(record, filepath=str(target)) == str(target)
    assert target.read_bytes() == source.read_bytes()

    client.remove_attachment(id="report")
    assert client.get_record(id="report")["data"]["attachment"] is None
    assert requests.get(attachment["location"], timeout=30).status_code == 404
