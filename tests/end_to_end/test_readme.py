"""README.rst's examples, run as a new user runs them: its curl, HTTPie, Python and
``kinto-attachment`` snippets (read from README.rst at run time) against ``make serve``,
from a folder holding what a fresh clone has. Only the port differs, a free one given to
``make serve PORT=...``: so this also checks that every URL the server hands out follows
the port."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..helpers.make_serve import README, REPOSITORY, MakeServe, start_make_serve
from ..helpers.readme import blocks_starting_with, literal_blocks, shell_commands

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
AUTH = ("alice", "secret")


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[MakeServe]:
    server = start_make_serve(tmp_path_factory.mktemp("make-serve"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clone(tmp_path) -> Path:
    """The files of the checkout that README's commands name."""
    shutil.copy(README, tmp_path / "README.rst")
    shutil.copytree(REPOSITORY / "docs", tmp_path / "docs")
    return tmp_path


def on_port(text: str, port: int) -> str:
    return text.replace("127.0.0.1:8888", f"127.0.0.1:{port}").replace(" :8888/", f" :{port}/")


def run(command: str, cwd: Path) -> str:
    """One README command in bash, with ``.venv``'s commands on PATH (README says to
    activate it); its output, once checked that it succeeded."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    terminal, user_side = os.openpty()  # input from a terminal, as a user's (HTTPie reads a pipe)
    try:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdin=user_side,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(user_side)
        os.close(terminal)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def kinto_answer(output: str) -> dict:
    """What a README command printed: Kinto's JSON answer, never an error envelope."""
    answer = json.loads(output)
    assert "errno" not in answer, answer
    return answer


def downloaded(location: str, port: int) -> bytes:
    assert location.startswith(f"http://127.0.0.1:{port}/attachments/"), location
    response = requests.get(location, timeout=30)
    assert response.status_code == 200, location
    return response.content


def test_curl_examples(server, clone):
    (block,) = blocks_starting_with(README, "curl")
    commands = [on_port(command, server.port) for command in shell_commands(block)]
    assert len(commands) == 5
    readme = (clone / "README.rst").read_bytes()
    create_bucket, create_collection, upload, get_record, delete = commands

    assert kinto_answer(run(create_bucket, clone))["data"]["id"] == "fonts"
    assert kinto_answer(run(create_collection, clone))["data"]["id"] == "files"
    attachment = kinto_answer(run(upload, clone))
    assert attachment["hash"] == sha256(readme)
    assert attachment["filename"] == "README.rst"
    assert downloaded(attachment["location"], server.port) == readme
    record = kinto_answer(run(get_record, clone))["data"]
    assert (record["title"], record["attachment"]) == ("Read me", attachment)
    capability = requests.get(f"{server.url}/v1/", timeout=30).json()["capabilities"]
    assert capability["attachments"]["base_url"] == f"http://127.0.0.1:{server.port}/attachments/"

    assert run(delete, clone) == ""
    record = requests.get(f"{server.url}/v1/buckets/fonts/collections/files/records/readme",
                          auth=AUTH, timeout=30).json()["data"]  # fmt: skip
    assert record["attachment"] is None
    assert requests.get(attachment["location"], timeout=30).status_code == 404


def test_httpie_example(server, clone):
    requests.put(f"{server.url}/v1/buckets/fonts", auth=AUTH, timeout=30)
    requests.put(f"{server.url}/v1/buckets/fonts/collections/files", auth=AUTH, timeout=30)
    (block,) = blocks_starting_with(README, "http")
    (command,) = shell_commands(block)
    attachment = kinto_answer(run(on_port(command, server.port), clone))
    readme = (clone / "README.rst").read_bytes()
    assert attachment["hash"] == sha256(readme)
    assert downloaded(attachment["location"], server.port) == readme


def test_python_example(server, clone):
    (script,) = [block for block in literal_blocks(README) if "requests_toolbelt" in block]
    (clone / "example.py").write_text(on_port(script, server.port))
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=clone, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    model = (clone / "model.bin").read_bytes()
    assert done.stdout == f"201 {sha256(model)}\n"
    record = requests.get(f"{server.url}/v1/buckets/ml/collections/models/records/m1",
                          auth=AUTH, timeout=30).json()["data"]  # fmt: skip
    assert record["version"] == 3
    assert downloaded(record["attachment"]["location"], server.port) == model


def test_command_line_tools_example(server, clone):
    (block,) = blocks_starting_with(README, "kinto-attachment")
    upload, download = (on_port(command, server.port) for command in shell_commands(block))
    sent = ["README.rst", *sorted(path.name for path in (clone / "docs").glob("*.rst"))]
    assert run(upload, clone).strip() == f"{len(sent)} uploaded, 0 skipped, 0 failed"
    assert run(download, clone).strip() == f"{len(sent)} downloaded, 0 skipped, 0 failed"
    got = {path.name: path.read_bytes() for path in (clone / "downloaded").iterdir()}
    assert got == {
        name: (clone / name if name == "README.rst" else clone / "docs" / name).read_bytes()
        for name in sent
    }


def test_demo_page_follows_the_port(server):
    """The demo's own links are relative; what it shows comes from the capability."""
    page = requests.get(f"{server.url}/demo/", timeout=30)
    assert page.status_code == 200
    assert "8888" not in page.text
    assert "8888" not in requests.get(f"{server.url}/demo/demo.js", timeout=30).text


@pytest.mark.parametrize(
    "path,status",
    [("/demo/%ff", 400), ("/attachments/%ff.txt", 404), ("/v1/buckets/%ff", 400)],
)
def test_a_path_that_is_not_utf8_gets_a_json_error(server, path, status):
    """Not a server's 500 page: the demo wrapper, the file server and Kinto all answer."""
    response = requests.get(f"{server.url}{path}", timeout=30)
    assert response.status_code == status
    assert response.json()["code"] == status


def test_request_summaries_say_what_was_asked(server):
    requests.get(f"{server.url}/v1/", timeout=30)
    summaries = [line for line in server.log().splitlines() if "[request.summary]" in line]
    assert summaries
    assert all(line.split("[request.summary]")[1].strip() for line in summaries)
    assert any("GET /v1/ 200 (" in line for line in summaries)


@pytest.mark.parametrize(
    "variables,base_url",
    [
        (["PORT=8899"], "http://127.0.0.1:8899/attachments/"),
        (["HOST=0.0.0.0", "PORT=8899"], "http://127.0.0.1:8899/attachments/"),
        (["HOST=0.0.0.0", "PUBLIC_HOST=files.example"], "http://files.example:8888/attachments/"),
    ],
)
def test_make_serve_urls_follow_host_and_port(variables, base_url):
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPOSITORY), "serve", *variables],
        capture_output=True,
        text=True,
        timeout=60,
        env={name: value for name, value in os.environ.items() if not name.startswith("MAKE")},
    )
    assert f"KINTO_ATTACHMENT_BASE_URL={base_url} " in done.stdout, done.stdout
