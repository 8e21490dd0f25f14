"""Real gunicorn processes for end-to-end tests.

Streaming bodies, chunked transfer encoding and dropped connections only behave like
production behind a real HTTP server, so these helpers start gunicorn on a free local
port, wait until Kinto answers, keep the server's log in a file for assertions and
post-mortems, and always stop the process tree they started.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
READY_PATHS = ("/v1/__heartbeat__", "/v1/")


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it; gunicorn binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name, or ``None`` when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _pids_where(field: int, value: int) -> list[int]:
    """Processes whose ``/proc/PID/stat`` field (0: state, 1: ppid, 2: pgrp) is ``value``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[0] != "Z" and int(stat[field]) == value:
                found.append(int(entry))
    return sorted(found)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (``VmRSS``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class GunicornServer:
    """One gunicorn master (in its own process group) and its workers."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process = process
        self.port = port
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return _pids_where(1, self.process.pid)

    def worker_pid(self) -> int:
        """The only worker's pid (servers here run with ``--workers 1``)."""
        pids = self.worker_pids()
        if len(pids) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {pids}")
        return pids[0]

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until one of :data:`READY_PATHS` answers 200, or fail with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            for path in READY_PATHS:
                if self._answers_ok(path):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready after {timeout}s:\n{self.log()}")

    def _answers_ok(self, path: str) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        """Terminate, wait, kill; then kill any worker the master left behind."""
        group = self.process.pid  # started with start_new_session: pgid == pid
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        for pid in _pids_where(2, group):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_gunicorn(
    args: Sequence[str],
    log_path: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    defaults: bool = True,
) -> GunicornServer:
    """Start ``gunicorn ARGS`` with one sync worker on ``127.0.0.1:port`` and wait for it.

    ``args`` come last, so they can override the defaults. With ``defaults=False`` the
    command is ``gunicorn ARGS`` alone: a config file (``-c``) says the rest, ``port``
    included. The caller owns the server and must :meth:`~GunicornServer.stop` it (a
    fixture finalizer); it is stopped here if it never becomes ready.
    """
    port = port or free_port()
    command = [GUNICORN, *args]
    if defaults:
        command[1:1] = [
            "--bind", f"{HOST}:{port}", "--no-control-socket", "--workers", "1",
            "--graceful-timeout", "5", "--timeout", "120",
        ]  # fmt: skip
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd or log_path.parent,
            start_new_session=True,
        )
    server = GunicornServer(process, port, log_path)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server
