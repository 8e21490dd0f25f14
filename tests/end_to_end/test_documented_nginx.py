"""The nginx locations ``docs/deploying.rst`` gives for local storage, run by a real
nginx: they serve public files, and never the private folder. nginx's workers can read
private files when ``private_files_group`` gives them that group (as
``download_accel_path`` needs), so only the location keeps them from anyone who learnt a
key (every private ``location`` carries one)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import requests

from ..helpers.local_stack import stack
from ..helpers.system_packages import require

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploying.rst"
DOCUMENTED_ROOT = "/var/lib/kinto/attachments/"


def documented_locations() -> str:
    """The locations of the doc's literal block for local storage, but the one for the API."""
    section = DOC.read_text().split("Serving files from local storage", 1)[1]
    block = section.split("::\n", 1)[1].split("    location /v1/", 1)[0]
    assert DOCUMENTED_ROOT in block
    return textwrap.dedent(block)


@pytest.fixture
def documented_nginx(tmp_path: Path):
    require("nginx")
    root = tmp_path / "attachments"
    (root / "_private").mkdir(parents=True)
    (root / "report.csv").write_bytes(b"public\n")
    secret = root / "_private" / "payroll.csv"
    secret.write_bytes(b"private\n")
    # As private_files_group leaves them: the group's to read.
    os.chmod(root / "_private", 0o750)
    os.chmod(secret, 0o640)
    port = stack.free_port()
    site = (
        f"server {{\n    listen {stack.HOST}:{port};\n"
        + documented_locations().replace(DOCUMENTED_ROOT, f"{root}/")
        + "}\n"
    )
    conf = stack.nginx_conf(tmp_path / "nginx", site)
    server = stack.Server(stack.nginx_command(conf), tmp_path / "nginx.log")
    try:
        server.wait_until_answers(port, "/attachments/report.csv")
        yield f"http://{stack.HOST}:{port}"
    finally:
        server.stop()


def test_the_documented_location_never_serves_private_files(documented_nginx):
    url = documented_nginx
    assert requests.get(f"{url}/attachments/report.csv", timeout=30).content == b"public\n"
    for spelling in ("_private/payroll.csv", "%5Fprivate/payroll.csv", "x/../_private/payroll.csv"):
        answer = requests.get(f"{url}/attachments/{spelling}", timeout=30)
        assert answer.status_code == 404, spelling
        assert b"private\n" not in answer.content
