"""The gunicorn servers the upload benchmark compares.

The middleware storing on local disk and on S3, the ``kinto-attachment`` plugin (in its own
virtualenv, see ``plugin_env``) and the ceiling. All run under the same gunicorn settings,
each in its own process (so that its memory and CPU can be read from /proc apart from the
client's), on a free local port, with its log kept in the work directory to show when a
step fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60
UPLOAD_TIMEOUT_S = 600
BENCHMARKS_DIR = Path(__file__).resolve().parent
MIDDLEWARE, MIDDLEWARE_S3, PLUGIN, CEILING = "middleware", "middleware+s3", "plugin", "ceiling"
MIDDLEWARE_GCS, PLUGIN_GCS = "middleware+gcs", "plugin+gcs"
#: Every server, in the order each round of uploads visits them: the middleware and the
#: ceiling side by side; the plugin's aftermath (see ``measure.bench_case``) on the S3
#: upload, which is moto's pace and takes long enough for it to pass before the next round.
SERVERS = (MIDDLEWARE, CEILING, PLUGIN, MIDDLEWARE_S3, MIDDLEWARE_GCS, PLUGIN_GCS)

INI_TEMPLATE = """\
[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.storage_url =
kinto.cache_backend = kinto.core.cache.memory
kinto.cache_url =
kinto.permission_backend = kinto.core.permission.memory
kinto.permission_url =
kinto.userid_hmac_secret = benchmark-secret
multiauth.policies = basicauth
kinto.bucket_create_principals = system.Authenticated
{storage}
kinto.attachment.extensions = any

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""


class BenchmarkError(Exception):
    """Something that makes the numbers meaningless: a failed upload, a server that died."""


@dataclass
class Server:
    """A running gunicorn: one of ``SERVERS``."""

    name: str
    process: subprocess.Popen
    base_url: str
    log: Path
    #: The ceiling hashes the raw multipart body; the middleware, the file inside it.
    hashes_raw_body: bool

    @property
    def pid(self) -> int:
        return self.process.pid

    def state(self) -> str:
        return "running" if self.process.poll() is None else f"exited ({self.process.returncode})"


def write_ini(folder: Path, storage_settings: str) -> Path:
    """``folder/kinto.ini``: Kinto on memory backends, with ``storage_settings`` added."""
    folder.mkdir(parents=True, exist_ok=True)
    ini = folder / "kinto.ini"
    ini.write_text(INI_TEMPLATE.format(storage=storage_settings))
    return ini


def free_port() -> int:
    """A port the kernel says is free now (another process could take it: unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn_command(python: str, app: str, port: int, *extra: str) -> list[str]:
    """One sync worker, the deployment the streaming promise is about; both servers use it.

    The timeout must outlast the slowest upload, or the worker would be killed mid-body.
    """
    return [
        python,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        "1",
        "--worker-class",
        "sync",
        "--timeout",
        str(UPLOAD_TIMEOUT_S),
        "--no-control-socket",
        *extra,
    ]


def start_server(
    name: str,
    app: str,
    workdir: Path,
    env: dict[str, str],
    *extra_args: str,
    hashes_raw_body: bool = False,
    python: str = sys.executable,
) -> Server:
    """Start gunicorn on a free port, logging to ``workdir/<name>.log``.

    In its own session, so that Ctrl-C reaches only this script, which then stops the
    server itself (in ``finally``) and can wait for it.
    """
    port = free_port()
    log = workdir / f"{name}.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            gunicorn_command(python, app, port, *extra_args),
            cwd=workdir,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, f"http://{HOST}:{port}", log, hashes_raw_body)


def start_service(
    name: str, command: list[str], workdir: Path, ready: Callable[[], bool]
) -> subprocess.Popen:
    """A storage service the servers use (moto, fake-gcs-server), in its own session,
    logging to ``workdir/<name>.log``; returned once ``ready()`` says so."""
    with open(workdir / f"{name}.log", "wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if ready():
                return process
        except OSError:  # not listening yet
            pass
        time.sleep(0.1)
    process.kill()
    raise BenchmarkError(f"{name} did not start")


def start_middleware(workdir: Path) -> Server:
    """Kinto (memory backends) wrapped by the middleware, storing under ``workdir``."""
    storage = workdir / MIDDLEWARE / "attachments"
    storage.mkdir(parents=True)
    ini = write_ini(workdir / MIDDLEWARE, f"kinto.attachment.base_path = {storage}")
    return start_server(
        MIDDLEWARE, "kinto_attachment_mw.wsgi:application", workdir, {"KINTO_INI": str(ini)}
    )


def start_plugin(workdir: Path, python: Path) -> Server:
    """Kinto with the plugin included, storing under ``workdir`` too: the same disk."""
    storage = workdir / PLUGIN / "attachments"
    storage.mkdir(parents=True)
    settings = (
        "kinto.includes = kinto_attachment",
        f"kinto.attachment.base_path = {storage}",
        "kinto.attachment.base_url = http://files.invalid/",
    )
    ini = write_ini(workdir / PLUGIN, "\n".join(settings))
    return start_server(
        PLUGIN,
        "plugin_app:application",
        workdir,
        {"KINTO_INI": str(ini)},
        "--pythonpath",
        str(BENCHMARKS_DIR),
        python=str(python),
    )


def start_ceiling(workdir: Path) -> Server:
    """The ceiling app, writing under ``workdir`` too: the same disk as the middleware's."""
    folder = workdir / "ceiling"
    folder.mkdir()
    return start_server(
        CEILING,
        "ceiling_app:application",
        workdir,
        {"CEILING_DIR": str(folder)},
        "--pythonpath",
        str(BENCHMARKS_DIR),
        hashes_raw_body=True,
    )


def wait_until_ready(server: Server) -> None:
    """Poll Kinto's heartbeat (the ceiling answers any path) until it says yes."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(f"{server.name} gunicorn {server.state()} while starting")
        try:
            if requests.get(f"{server.base_url}/v1/__heartbeat__", timeout=2).ok:
                return
        except requests.RequestException:  # not listening yet, or still importing
            pass
        time.sleep(0.2)
    raise BenchmarkError(f"{server.name}: no heartbeat after {STARTUP_TIMEOUT_S} s")


def stop_server(server: Server) -> None:
    """Quick shutdown (SIGINT) of the master; kill its whole session if it hangs."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.process.wait()


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def server_report(server: Server) -> str:
    """What to show when a step failed: is the server alive, and what did it log."""
    return f"{server.name} gunicorn is {server.state()}; end of its log:\n{tail(server.log)}"


def exit_on_sigterm(signum, frame) -> None:
    """Turn SIGTERM into SystemExit, so that ``finally`` blocks stop the servers."""
    sys.exit(128 + signum)
