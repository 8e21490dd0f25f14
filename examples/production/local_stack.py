"""The production files of this folder, on one machine: what ``serve_local.py`` (``make
serve-prod``) and the end-to-end test share.

Only what must differ locally is changed. kinto.ini and gunicorn.conf.py are used as they
are, with the environment variables a deployment would set (Kinto's overrides, boto3's
credentials, gunicorn's bind); nginx-site.conf, which nginx cannot feed from the
environment, is copied with local addresses in place of production's.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
INI = HERE / "kinto.ini"
GUNICORN_CONF = HERE / "gunicorn.conf.py"
SITE = HERE / "nginx-site.conf"
HOST = "127.0.0.1"
NGINX = "/usr/sbin/nginx"
#: moto's server takes any credentials and region; these keep boto3 from looking further.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
S3_REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def environment(
    *, database_url: str, s3_endpoint: str, bucket: str, base_url: str, bind: str, host: str
) -> dict[str, str]:
    """The variables a deployment sets: kinto.ini's CHANGE lines, S3 credentials (an IAM
    role's, in production), where gunicorn listens."""
    return {
        "KINTO_INI": str(INI),
        "GUNICORN_BIND": bind,
        "KINTO_STORAGE_URL": database_url,
        "KINTO_PERMISSION_URL": database_url,
        "KINTO_CACHE_URL": database_url,
        "KINTO_USERID_HMAC_SECRET": "local-only-not-secret",
        "KINTO_ATTACHMENT_AWS_BUCKET_NAME": bucket,
        "KINTO_ATTACHMENT_AWS_ENDPOINT_URL": s3_endpoint,
        "KINTO_ATTACHMENT_AWS_REGION": S3_REGION,
        "KINTO_ATTACHMENT_BASE_URL": base_url,
        "KINTO_HTTP_HOST": host,
        **S3_CREDENTIALS,
        # This machine's own AWS configuration, if any, stays out of it.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def bucket_policy(bucket: str) -> str:
    """What the deployment's bucket policy gives nginx: reading objects, nothing more
    (production narrows the principal with a condition on nginx's address)."""
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    new_text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"{SITE.name}: expected one line matching {pattern!r}, found {count}")
    return new_text


def site(
    *,
    listen_port: int,
    gunicorn_bind: str,
    s3_endpoint: str,
    bucket: str,
    accel_root: Path | None = None,
) -> str:
    """nginx-site.conf with local addresses: nginx on ``listen_port``, gunicorn at
    ``gunicorn_bind``, the bucket path-style on moto's ``s3_endpoint``; with
    ``accel_root`` (local storage), its ``/protected/`` location turned on for that folder.
    A line this cannot find fails loudly, so the site file and this copy cannot drift
    apart."""
    text = SITE.read_text()
    if accel_root is not None:
        text = _replace_once(
            text,
            r"^\s*#\s*(location /protected/ \{ internal; alias )[^;]+;",
            rf"    \g<1>{accel_root}/;",
        )
    text = _replace_once(text, r"^(\s*listen\s+)[^;]+;", rf"\g<1>{HOST}:{listen_port};")
    text = _replace_once(text, r"^(\s*server\s+)[^\s;{]+;", rf"\g<1>{gunicorn_bind};")
    text = _replace_once(
        text, r'^(\s*set \$attachments_origin\s+)"[^"]*";', rf'\g<1>"{s3_endpoint}";'
    )
    return _replace_once(text, r'^(\s*set \$attachments_prefix\s+)"[^"]*";', rf'\g<1>"/{bucket}";')


def nginx_conf(folder: Path, site_text: str) -> Path:
    """``folder/nginx.conf``: the site inside a main configuration that keeps every file
    of nginx (pid, logs, temporary files) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    # nginx started by root runs its workers as nobody unless told otherwise, and they
    # could not reach a private folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    temp_lines = "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items())
    conf.write_text(
        f"{user}worker_processes 2;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'nginx-error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {folder / 'nginx-access.log'};\n"
        "    default_type application/octet-stream;\n"
        f"{temp_lines}"
        f"{site_text}\n"
        "}\n"
    )
    return conf


def nginx_command(conf: Path) -> list[str]:
    folder = conf.parent
    return [NGINX, "-p", str(folder), "-c", str(conf), "-e", str(folder / "nginx-error.log"),
            "-g", "daemon off;"]  # fmt: skip


class Server:
    """A server in a process group of its own, its output in a log file; :meth:`stop` ends
    the whole group (gunicorn's and nginx's workers too)."""

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )

    def wait_until_answers(self, port: int, path: str, timeout: float = 60.0) -> None:
        """Until ``GET path`` on ``port`` answers 200; fails with the log if the process
        exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log_path.name}: exited\n{self.log_path.read_text()}")
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            try:
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.log_path.name}: no answer after {timeout}s")

    def stop(self, timeout: float = 15.0) -> None:
        group = self.process.pid  # start_new_session: the group is the main process's id
        if self.process.poll() is None:
            self.process.terminate()  # the master stops its workers
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # whatever the main process left behind
        self.process.wait(timeout)
