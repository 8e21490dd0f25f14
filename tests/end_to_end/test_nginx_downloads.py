"""Permission-checked downloads on local storage handed to nginx: the middleware asks
Kinto, nginx sends the bytes from an ``internal`` location (``X-Accel-Redirect``). nginx
runs the production example's site file, its ``/protected/`` location turned on."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..helpers import unchecked_writes
from ..helpers.live_server import COLLECTION_PATH, USER, Kinto, kinto_ini_server
from ..helpers.local_stack import stack
from ..helpers.system_packages import require

pytestmark = pytest.mark.e2e

BASE_PATH = "kinto.attachment.base_path"

#: The application, with a way past the middleware for records written unchecked.
APP = ["--pythonpath", str(Path(__file__).parents[2]), f"{unchecked_writes.__name__}:application"]
SANDBOX = "default-src 'none'; sandbox"


def record_written_unchecked(kinto: Kinto, record: str, mimetype: str) -> None:
    """The record's attachment says ``mimetype``, written straight into Kinto."""
    attachment = kinto.request("GET", record).json()["data"]["attachment"]
    answer = kinto.request(
        "PATCH",
        record,
        json={"data": {"attachment": {**attachment, "mimetype": mimetype}}},
        headers={unchecked_writes.HEADER: "1"},
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[tuple[str, Kinto]]:
    yield from serve_behind_nginx(tmp_path)


def serve_behind_nginx(
    tmp_path: Path, attachment: dict[str, str] | None = None, nginx_user: str = ""
) -> Iterator[tuple[str, Kinto]]:
    """Kinto behind nginx (its workers run as ``nginx_user`` when given)."""
    require("nginx")
    server, root = kinto_ini_server(
        tmp_path,
        attachment={
            "kinto.attachment.download_accel_path": "/protected",
            "kinto.attachment.resources.b.secret.private": "true",
            **(attachment or {}),
        },
        app=APP,
    )
    root = Path(server_root) if (server_root := (attachment or {}).get(BASE_PATH)) else root
    nginx = None
    try:
        port = stack.free_port()
        site = stack.site(
            listen_port=port,
            gunicorn_bind=f"{stack.HOST}:{server.port}",
            s3_endpoint="http://s3.invalid",  # no S3 here: files are on local disk
            bucket="none",
            accel_root=root,
        )
        conf = stack.nginx_conf(tmp_path / "nginx", site)
        if nginx_user:
            conf.write_text(f"user {nginx_user};\n" + conf.read_text().replace("user root;", ""))
        nginx = stack.Server(stack.nginx_command(conf), tmp_path / "nginx.log")
        nginx.wait_until_answers(port, "/v1/__heartbeat__")
        kinto = Kinto(server)
        kinto.create_collection()
        yield f"http://{stack.HOST}:{port}", kinto
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()


def test_nginx_sends_what_kinto_allowed(behind_nginx):
    url, kinto = behind_nginx
    content = os.urandom(300_000)
    meta = kinto.upload("r1", "report.csv", content).json()
    download = f"{url}{COLLECTION_PATH}/records/r1/attachment"
    assert requests.get(download, timeout=30).status_code == 401
    answer = requests.get(download, auth=USER, timeout=30)
    assert answer.status_code == 200
    assert answer.content == content
    assert answer.headers["Content-Type"] == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="report.csv"'
    assert "X-Accel-Redirect" not in answer.headers
    part = requests.get(download, auth=USER, headers={"Range": "bytes=10-19"}, timeout=30)
    assert part.status_code == 206 and part.content == content[10:20]
    # The internal location is nginx's alone: asked directly, it does not exist.
    key = meta["location"].split("/attachments/", 1)[1]
    direct = requests.get(f"{url}/protected/{key}", timeout=30)
    assert direct.status_code == 404


def test_nginx_sends_private_files_to_their_readers_only(behind_nginx):
    url, kinto = behind_nginx
    secret = "/v1/buckets/b/collections/secret"
    kinto.create_collection(secret)
    content = os.urandom(200_000)
    meta = kinto.upload("s1", "payroll.csv", content, collection=secret).json()
    location = meta["location"]
    path = location.split("/v1/", 1)[1]
    through_nginx = f"{url}/v1/{path}"
    assert requests.get(through_nginx, timeout=30).status_code == 401
    answer = requests.get(through_nginx, auth=USER, timeout=30)
    assert answer.status_code == 200 and answer.content == content
    key = location.split("?key=", 1)[1]
    assert key.startswith("_private/")
    assert requests.get(f"{url}/protected/{key}", timeout=30).status_code == 404
    assert requests.get(f"{url}/attachments/{key}", timeout=30).status_code == 404


@pytest.fixture
def nginx_in_a_group(tmp_path: Path) -> Iterator[tuple[str, Kinto, Path]]:
    """nginx's workers run as another user than Kinto (as root: ``nobody``), in the
    group that ``private_files_group`` gives private files to."""
    shared = Path(tempfile.mkdtemp(prefix="kinto-attachments-"))
    os.chmod(shared, 0o755)  # nginx's workers reach the storage folder
    root = shared / "attachments"
    if os.geteuid() == 0:
        group, nginx_user = "nogroup", "nobody nogroup"
    else:  # nginx cannot change users: it runs as this one, in its group
        group, nginx_user = str(os.getegid()), ""
    settings = {BASE_PATH: str(root), "kinto.attachment.private_files_group": group}
    try:
        for url, kinto in serve_behind_nginx(tmp_path, settings, nginx_user):
            yield url, kinto, root
    finally:
        shutil.rmtree(shared)


def test_nginx_workers_read_private_files_through_their_group(nginx_in_a_group):
    """Private files are 0640 in 0750 folders of the group: nginx's workers read them
    (with the server's own 0600 and 0700 they would answer 403)."""
    url, kinto, root = nginx_in_a_group
    secret = "/v1/buckets/b/collections/secret"
    kinto.create_collection(secret)
    content = os.urandom(100_000)
    location = kinto.upload("s1", "payroll.csv", content, collection=secret).json()["location"]
    private_file = root / location.split("?key=", 1)[1]
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o640
    assert stat.S_IMODE(private_file.parent.stat().st_mode) == 0o750
    through_nginx = f"{url}/v1/{location.split('/v1/', 1)[1]}"
    answer = requests.get(through_nginx, auth=USER, timeout=30)
    assert answer.status_code == 200 and answer.content == content
    kinto.upload("p1", "open.csv", b"a,b\n")
    download = f"{url}{COLLECTION_PATH}/records/p1/attachment"
    assert requests.get(download, auth=USER, timeout=30).content == b"a,b\n"


def test_nginx_answers_carry_the_safety_headers(behind_nginx):
    """nginx keeps only some of the answer's headers when it follows X-Accel-Redirect: its
    ``/protected/`` location adds nosniff and the sandbox policy itself, on full, partial,
    conditional and HEAD answers alike."""
    url, kinto = behind_nginx
    kinto.upload("r1", "page.txt", b"<script>alert(document.cookie)</script>")
    download = f"{url}{COLLECTION_PATH}/records/r1/attachment"
    answers = {
        "200": requests.get(download, auth=USER, timeout=30),
        "head": requests.head(download, auth=USER, timeout=30),
        "206": requests.get(download, auth=USER, headers={"Range": "bytes=0-3"}, timeout=30),
    }
    etag = answers["200"].headers.get("ETag") or answers["200"].headers["Last-Modified"]
    condition = "If-None-Match" if "ETag" in answers["200"].headers else "If-Modified-Since"
    answers["304"] = requests.get(download, auth=USER, headers={condition: etag}, timeout=30)
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "200": 200,
        "head": 200,
        "206": 206,
        "304": 304,
    }
    for name, answer in answers.items():
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", name
        assert answer.headers.get("Content-Security-Policy") == SANDBOX, name


@pytest.mark.parametrize(
    "mimetype",
    [
        pytest.param("text/html\r\nSet-Cookie: session=stolen", id="crlf"),
        pytest.param("text/" + "x" * 20_000, id="20000-characters"),
    ],
)
def test_a_recorded_mimetype_that_is_no_media_type_is_no_502(behind_nginx, mimetype):
    url, kinto = behind_nginx
    content = b"<script>alert(document.cookie)</script>"
    kinto.upload("r1", "page.txt", content)
    record = f"{COLLECTION_PATH}/records/r1"
    record_written_unchecked(kinto, record, mimetype)
    answer = requests.get(f"{url}{record}/attachment", auth=USER, timeout=30)
    assert answer.status_code == 200 and answer.content == content
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="page.txt"'
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in answer.headers
