"""The two gunicorns of the pass-through benchmark: bare Kinto and Kinto wrapped.

Same ini, same gunicorn settings, each in its own process group on a free local port, with
its log kept in the work directory to show why a step failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import load_client
from procstat import cpu_seconds, cpu_times, machine_busy_s, process_tree
from servers import INI_TEMPLATE, free_port

HOST = "127.0.0.1"
BENCHMARKS_DIR = Path(__file__).resolve().parent
STARTUP_TIMEOUT_S = 60
BARE, WRAPPED = "bare", "wrapped"
#: Both servers run under these: two sync workers, as many as the machine has cores.
GUNICORN_SETTINGS = ("--workers", "2", "--worker-class", "sync", "--no-control-socket")


class ServerError(Exception):
    """A server that would not start, or died."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def state(self) -> str:
        return "running" if self.process.poll() is None else f"exited ({self.process.returncode})"

    def report(self, lines: int = 30) -> str:
        """Is it alive, and what did it log last."""
        try:
            text = "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            text = "(no log)"
        return f"{self.name} gunicorn is {self.state()}; end of its log:\n{text}"


def write_ini(workdir: Path) -> Path:
    storage = workdir / "attachments"
    storage.mkdir(exist_ok=True)
    ini = workdir / "passthrough.ini"
    ini.write_text(INI_TEMPLATE.format(storage=f"kinto.attachment.base_path = {storage}"))
    return ini


def gunicorn_command(name: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        f"passthrough_app:{name}",
        "--pythonpath",
        str(BENCHMARKS_DIR),
        "--bind",
        f"{HOST}:{port}",
        *GUNICORN_SETTINGS,
    ]


def start(name: str, workdir: Path, ini: Path) -> Server:
    """gunicorn serving ``passthrough_app:<name>``, in its own session so that Ctrl-C
    reaches only the benchmark, which then stops the server itself."""
    port = free_port()
    log = workdir / f"{name}.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            gunicorn_command(name, port),
            cwd=workdir,
            env={**os.environ, "KINTO_INI": str(ini)},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, port, log)


def wait_until_ready(server: Server, probe: load_client.Target) -> None:
    """Until ``probe`` (a request for the seeded record) is answered as expected."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"{server.name} gunicorn {server.state()} while starting")
        try:
            load_client.check(probe)
            return
        except (OSError, load_client.LoadError) as error:  # not listening yet, importing
            last_error = error
            time.sleep(0.2)
    raise ServerError(f"{server.name}: not ready after {STARTUP_TIMEOUT_S} s ({last_error})")


@dataclass
class Usage:
    """CPU seconds used: by each server (master and workers), and by every process on the
    machine that is not this benchmark's."""

    servers: dict[str, float]
    others: float

    def __sub__(self, before: Usage) -> Usage:
        return Usage(
            {name: cpu - before.servers[name] for name, cpu in self.servers.items()},
            max(0.0, self.others - before.others),
        )


@dataclass
class Processes:
    """The processes read around every batch, found once: scanning all of /proc for them
    takes milliseconds, reading their few files microseconds."""

    #: Server name -> its gunicorn master and workers.
    servers: dict[str, list[int]]
    #: This benchmark's whole tree: this process, its client pool, both servers.
    ours: list[int]

    @classmethod
    def scan(cls, running: list[Server]) -> Processes:
        return cls(
            {server.name: sorted(process_tree(server.pid)) for server in running},
            process_tree(os.getpid()),
        )

    def check(self, running: list[Server]) -> None:
        """A worker replaced since the scan (crashed, timed out) would make CPU wrong."""
        for server in running:
            if sorted(process_tree(server.pid)) != self.servers[server.name]:
                raise ServerError(f"{server.name}: its processes changed during the run")

    def usage(self) -> Usage:
        others = machine_busy_s() - sum(cpu_times(self.ours))
        return Usage({name: cpu_seconds(pids) for name, pids in self.servers.items()}, others)
