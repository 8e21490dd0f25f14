"""Permission-checked downloads on local storage handed to nginx: the middleware asks
Kinto, nginx sends the bytes from an ``internal`` location (``X-Accel-Redirect``). nginx
runs the production example's site file, its ``/protected/`` location turned on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..helpers.live_server import COLLECTION_PATH, USER, Kinto, kinto_ini_server
from ..helpers.local_stack import stack
from ..helpers.system_packages import require

pytestmark = pytest.mark.e2e


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[tuple[str, Kinto]]:
    require("nginx")
    server, root = kinto_ini_server(
        tmp_path,
        attachment={
            "kinto.attachment.download_accel_path": "/protected",
            "kinto.attachment.resources.b.secret.private": "true",
        },
    )
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
