"""Permission-checked downloads on local storage handed to nginx: the middleware asks
Kinto, nginx sends the bytes from an ``internal`` location (``X-Accel-Redirect``)."""

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
        tmp_path, attachment={"kinto.attachment.download_accel_path": "/protected"}
    )
    nginx = None
    try:
        port = stack.free_port()
        site = (
            f"server {{ listen {stack.HOST}:{port};\n"
            f"  location / {{ proxy_pass http://{stack.HOST}:{server.port};"
            "    proxy_set_header Host $http_host; }\n"
            f"  location /protected/ {{ internal; alias {root}/; }}\n}}"
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
