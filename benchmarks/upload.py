"""Upload benchmark: throughput, CPU and memory of large attachment uploads, against a ceiling.

The middleware promises to stream uploads: a 512 MiB file should go through a gunicorn
worker without the worker holding it in memory. This script checks that promise the way a
deployment would see it, over real HTTP against a real gunicorn, and measures throughput
on the way. It starts Kinto (memory backend) wrapped by the middleware in a temporary
directory, uploads random files of a few sizes, and samples the server's resident memory
from /proc while each upload runs.

A throughput alone says little (is 150 MiB/s good on this machine?), so a second gunicorn,
with the same settings, runs ``ceiling_app.py``: the least any server must do with an
upload (read the body, hash it, write it to disk). Each upload goes to both servers back to
back (middleware, ceiling, middleware, ...), with the very same multipart body sent by the
same client code, and the ratio middleware/ceiling is taken pair by pair, so that a slow
moment of this shared machine weighs on both sides of a ratio rather than on one server.

Usage: ``.venv/bin/python benchmarks/upload.py [--sizes 1,64,512] [--repeat 3]``

Throughput is reported in MiB/s (file bytes, not multipart bytes, over the wall-clock time
of the whole request, response included). Server CPU is utime + stime of the gunicorn
master and its worker (/proc/PID/stat) during the request, per GiB of file, with utime
alone beside it: steadier than wall-clock throughput on a small, shared machine (the
client needs a core too), but counted in clock ticks (10 ms here), so coarse for small
files. Memory is the summed VmRSS of the gunicorn master and its workers; "peak growth" is
the highest value seen during an upload minus the value just before it. Results are
printed and written to benchmarks/results/upload.json.

Needs about three times the largest size in free disk space under $TMPDIR (default /tmp):
the generated file, its stored copy, and the ceiling's copy while it is being written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import requests
from requests_toolbelt import MultipartEncoder

MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_SIZES_MIB = (1, 64, 512)
DEFAULT_REPEAT = 3
#: The 512 MiB upload should grow the (middleware) server's memory by less than this.
TARGET_SIZE_MIB = 512
TARGET_GROWTH_MIB = 32
SAMPLE_INTERVAL_S = 0.02
#: Fewer samples than this per upload, and the peak is a guess (said so under the table).
MIN_RELIABLE_SAMPLES = 5
#: Fewer CPU clock ticks than this per upload, and CPU per GiB is coarse (said so too).
MIN_RELIABLE_TICKS = 50
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
WRITE_CHUNK = MIB
STARTUP_TIMEOUT_S = 60
UPLOAD_TIMEOUT_S = 600
AUTH = ("alice", "secret")
BUCKET, COLLECTION = "b", "c"
BENCHMARKS_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCHMARKS_DIR / "results" / "upload.json"
MIDDLEWARE, CEILING = "middleware", "ceiling"
SERVERS = (MIDDLEWARE, CEILING)  # also the order of each pair of uploads

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
kinto.attachment.base_path = {base_path}
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


# Machine and environment


def machine_info() -> dict:
    """What the numbers depend on, so that a result file can be compared with another."""
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gib": round(_meminfo_kib("MemTotal") / MIB, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kinto": version("kinto"),
        "gunicorn": version("gunicorn"),
        "kinto_attachment_mw": version("kinto-attachment-mw"),
    }


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _meminfo_kib(name: str) -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise BenchmarkError(f"{name} not in /proc/meminfo")


# Server memory and CPU, from /proc


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants.

    Found by scanning /proc for PPid, because /proc/PID/task/*/children is not built into
    every kernel (it is missing on this one). A process may vanish mid-scan: skipped.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        ppid = _status_field(int(entry), "PPid")
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry))
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _status_field(pid: int, name: str) -> int | None:
    """An integer field of /proc/PID/status (first number on its line), or ``None``."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def rss_kib(pids: list[int]) -> int:
    """Summed VmRSS of ``pids`` (the gunicorn master and its workers), in KiB."""
    return sum(_status_field(pid, "VmRSS") or 0 for pid in pids)


class MemorySampler:
    """Samples the server's RSS in a background thread while an upload runs.

    The client blocks in socket calls (releasing the GIL) during an upload, so a thread is
    enough to sample every ~20 ms without disturbing it much. The processes are found once,
    before the upload: scanning all of /proc costs ~1.5 ms of CPU per sample here, reading
    two status files ~45 µs. (A worker replaced mid-upload would have failed the upload.)
    """

    def __init__(self, pids: list[int], interval_s: float = SAMPLE_INTERVAL_S):
        self.pids = pids
        self.interval_s = interval_s
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, rss_kib(self.pids))
            self.samples += 1
            if self._stop.wait(self.interval_s):
                break


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """Summed (utime, stime) of ``pids`` (/proc/PID/stat), in seconds.

    The server's own CPU, apart from the client's and the sampler's that share the machine:
    steadier than wall-clock time, which waits whenever the other core is busy elsewhere.
    Kept apart because system time also swings with the machine's memory history (see
    ``Run``). Fields are counted after the ``)`` closing the command name (it may hold
    spaces): utime and stime are fields 14 and 15.
    """
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLOCK_TICKS_PER_S, system / CLOCK_TICKS_PER_S


# The servers


@dataclass
class Server:
    """A running gunicorn: the middleware's or the ceiling's."""

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


def write_ini(workdir: Path) -> Path:
    storage = workdir / "attachments"
    storage.mkdir()
    ini = workdir / "kinto.ini"
    ini.write_text(INI_TEMPLATE.format(base_path=storage))
    return ini


def free_port() -> int:
    """A port the kernel says is free now (another process could take it: unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_command(app: str, port: int, *extra: str) -> list[str]:
    """One sync worker, the deployment the streaming promise is about; both servers use it.

    The timeout must outlast the slowest upload, or the worker would be killed mid-body.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
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
) -> Server:
    """Start gunicorn on a free port, logging to ``workdir/<name>.log``.

    In its own session, so that Ctrl-C reaches only this script, which then stops the
    server itself (in ``finally``) and can wait for it.
    """
    port = free_port()
    log = workdir / f"{name}.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            gunicorn_command(app, port, *extra_args),
            cwd=workdir,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, f"http://127.0.0.1:{port}", log, hashes_raw_body)


def start_middleware(workdir: Path) -> Server:
    """Kinto (memory backends) wrapped by the middleware, storing under ``workdir``."""
    env = {"KINTO_INI": str(write_ini(workdir))}
    return start_server(MIDDLEWARE, "kinto_attachment_mw.wsgi:application", workdir, env)


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


# Files and uploads


def make_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes in 1 MiB chunks; return their SHA-256.

    Random so that nothing on the way can compress or deduplicate it; in chunks so that
    the benchmark process stays small too (its memory is not measured, but the machine's
    is shared with the server).
    """
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            chunk = os.urandom(min(WRITE_CHUNK, remaining))
            digest.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Payload:
    """A generated file and the one multipart body that carries it, to both servers.

    The boundary is fixed, so every upload of the file sends the very same bytes; the
    body's hash and length are what the ceiling reports, the file's what the middleware does.
    """

    path: Path
    size: int
    sha256: str
    boundary: str
    body_size: int
    body_sha256: str

    def expected_by(self, server: Server) -> tuple[str, int]:
        """The (hash, size) ``server`` must answer if it received every byte unchanged."""
        if server.hashes_raw_body:
            return self.body_sha256, self.body_size
        return self.sha256, self.size


def multipart_body(file, name: str, boundary: str) -> MultipartEncoder:
    """The body of every upload: the file as field ``attachment``, read as it is sent."""
    return MultipartEncoder(
        {"attachment": (name, file, "application/octet-stream")}, boundary=boundary
    )


def make_payload(path: Path, size: int) -> Payload:
    """Generate the file, then read its multipart body through once to hash it."""
    sha256 = make_random_file(path, size)
    boundary = uuid.uuid4().hex
    digest, body_size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        body = multipart_body(file, path.name, boundary)
        while chunk := body.read(WRITE_CHUNK):
            digest.update(chunk)
            body_size += len(chunk)
    return Payload(path, size, sha256, boundary, body_size, digest.hexdigest())


def create_collection(session: requests.Session, base_url: str) -> None:
    for path in (f"/v1/buckets/{BUCKET}", f"/v1/buckets/{BUCKET}/collections/{COLLECTION}"):
        response = session.put(base_url + path, json={}, timeout=30)
        if response.status_code not in (200, 201):
            raise BenchmarkError(f"PUT {path}: {response.status_code} {response.text[:500]}")


def upload(session: requests.Session, base_url: str, record_id: str, payload: Payload) -> dict:
    """POST the payload's body, streamed from disk; the ceiling ignores the URL.

    MultipartEncoder reads the open file as the socket accepts bytes and gives requests the
    body's length, so the client sends a Content-Length (as browsers do) in constant memory.
    """
    url = f"{base_url}/v1/buckets/{BUCKET}/collections/{COLLECTION}/records/{record_id}/attachment"
    name = payload.path.name
    with open(payload.path, "rb") as file:
        body = multipart_body(file, name, payload.boundary)
        response = session.post(
            url,
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=(10, UPLOAD_TIMEOUT_S),
        )
    if response.status_code not in (200, 201):
        raise BenchmarkError(f"upload of {name}: {response.status_code} {response.text[:500]}")
    return response.json()


def check_answer(answer: dict, server: Server, payload: Payload) -> None:
    """The server must have received every byte, unchanged."""
    sha256, size = payload.expected_by(server)
    if answer.get("hash") != sha256 or answer.get("size") != size:
        raise BenchmarkError(
            f"upload of {payload.path.name} to {server.name}: server says "
            f"hash={answer.get('hash')} size={answer.get('size')}, "
            f"expected hash={sha256} size={size}"
        )


# Measuring


@dataclass
class Run:
    """One upload to one server.

    Server CPU is user + system time; user time alone is kept too, because system time
    mostly pays for the kernel's side of the upload (socket, page cache), and on a VM that
    hands freed memory back to its host (free page reporting), filling the page cache costs
    several times more when the pages were freed seconds before than just before.
    """

    seconds: float
    mib_per_s: float
    server_cpu_s: float
    server_user_s: float
    server_cpu_s_per_gib: float
    server_user_s_per_gib: float
    client_cpu_s: float
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    peak_growth_mib: float
    samples: int
    processes: int


@dataclass
class SizeResult:
    """All uploads of one size, by server; the i-th runs of the two servers make a pair."""

    size_mib: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {name: [] for name in SERVERS})

    def median(self, server: str, measure: str) -> float:
        """The median of a ``Run`` field (``mib_per_s``, ...) over ``server``'s runs."""
        return statistics.median(getattr(run, measure) for run in self.runs[server])

    def max_peak_growth_mib(self, server: str) -> float:
        return max(run.peak_growth_mib for run in self.runs[server])

    @property
    def median_ratio(self) -> float:
        """Median of middleware/ceiling MiB/s, pair by pair.

        Each ratio compares two uploads made seconds apart, so a slow spell of the machine
        tends to hit both of its terms; a ratio of the two medians would not pair them.
        """
        pairs = zip(self.runs[MIDDLEWARE], self.runs[CEILING], strict=True)
        return statistics.median(mw.mib_per_s / ceiling.mib_per_s for mw, ceiling in pairs)

    @property
    def min_samples(self) -> int:
        return min(run.samples for runs in self.runs.values() for run in runs)

    @property
    def min_ticks(self) -> float:
        cpu = min(run.server_cpu_s for runs in self.runs.values() for run in runs)
        return cpu * CLOCK_TICKS_PER_S

    def server_summary(self, server: str) -> dict:
        return {
            "runs": len(self.runs[server]),
            "median_mib_per_s": round(self.median(server, "mib_per_s"), 1),
            "median_server_cpu_s_per_gib": round(self.median(server, "server_cpu_s_per_gib"), 2),
            "median_server_user_s_per_gib": round(self.median(server, "server_user_s_per_gib"), 2),
            "max_peak_growth_mib": round(self.max_peak_growth_mib(server), 1),
            "details": [asdict(run) for run in self.runs[server]],
        }

    def summary(self) -> dict:
        """The middleware's figures at the top level, where they were before the ceiling."""
        return {
            "size_mib": self.size_mib,
            **self.server_summary(MIDDLEWARE),
            "median_ratio_to_ceiling": round(self.median_ratio, 3),
            CEILING: self.server_summary(CEILING),
        }


def measured_upload(
    session: requests.Session, server: Server, record_id: str, payload: Payload
) -> Run:
    """One upload, timed, with the server's CPU read and its memory sampled around it.

    Client CPU (this process, sampler thread included) is kept in the details: it tells
    whether the client, which shares the two cores with the server, was the bottleneck.
    """
    pids = process_tree(server.pid)
    before = rss_kib(pids)
    (user_before, system_before), client_before = cpu_times(pids), time.process_time()
    with MemorySampler(pids) as sampler:
        started = time.perf_counter()
        answer = upload(session, server.base_url, record_id, payload)
        seconds = time.perf_counter() - started
    user_after, system_after = cpu_times(pids)
    client_cpu = time.process_time() - client_before
    after = rss_kib(pids)
    check_answer(answer, server, payload)
    peak = max(sampler.peak_kib, after)
    user = user_after - user_before
    server_cpu = user + system_after - system_before
    gib = payload.size / GIB
    return Run(
        seconds=round(seconds, 4),
        mib_per_s=round(payload.size / MIB / seconds, 1),
        server_cpu_s=round(server_cpu, 2),
        server_user_s=round(user, 2),
        server_cpu_s_per_gib=round(server_cpu / gib, 2),
        server_user_s_per_gib=round(user / gib, 2),
        client_cpu_s=round(client_cpu, 3),
        rss_before_mib=round(before / 1024, 1),
        rss_peak_mib=round(peak / 1024, 1),
        rss_after_mib=round(after / 1024, 1),
        peak_growth_mib=round((peak - before) / 1024, 1),
        samples=sampler.samples,
        processes=len(pids),
    )


def warm_up(session: requests.Session, servers: list[Server], workdir: Path) -> None:
    """Small uploads first, so that imports and first-request setup are not measured."""
    payload = make_payload(workdir / "warmup.bin", 64 * 1024)
    for server in servers:
        for _ in range(2):
            check_answer(upload(session, server.base_url, "r-warmup", payload), server, payload)
    payload.path.unlink()


def bench_size(
    session: requests.Session,
    servers: list[Server],
    workdir: Path,
    size_mib: int,
    repeat: int,
) -> SizeResult:
    """``repeat`` pairs of uploads of one file: to each server in turn, back to back."""
    payload = make_payload(workdir / f"random-{size_mib}mib.bin", size_mib * MIB)
    result = SizeResult(size_mib)
    try:
        for index in range(1, repeat + 1):
            for server in servers:
                run = measured_upload(session, server, f"r-{size_mib}", payload)
                result.runs[server.name].append(run)
                print_run(f"{size_mib} MiB, run {index}/{repeat}, {server.name}", run)
    finally:
        payload.path.unlink()
    return result


# Reporting


def print_run(label: str, run: Run) -> None:
    print(
        f"  {label}: {run.seconds:.2f} s, {run.mib_per_s:.1f} MiB/s, "
        f"server CPU {run.server_cpu_s:.2f} s (user {run.server_user_s:.2f}), "
        f"client CPU {run.client_cpu_s:.2f} s, server RSS {run.rss_before_mib:.1f} -> "
        f"peak {run.rss_peak_mib:.1f} ({run.peak_growth_mib:+.1f}) -> "
        f"after {run.rss_after_mib:.1f} MiB "
        f"(processes: {run.processes}, samples: {run.samples})",
        flush=True,
    )


def print_environment(info: dict) -> None:
    print(f"Date:     {info['date']}")
    print(f"Machine:  {info['cores']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM")
    print(f"Platform: {info['platform']}")
    print(
        f"Versions: Python {info['python']}, Kinto {info['kinto']}, "
        f"gunicorn {info['gunicorn']}, kinto-attachment-mw {info['kinto_attachment_mw']}"
    )
    print()


def table_rows(result: SizeResult) -> list[tuple[str, ...]]:
    """One row per server, middleware first; the pairs' ratio on the middleware's row."""
    rows = []
    for name in SERVERS:
        ratio = f"{result.median_ratio:.2f}" if name == MIDDLEWARE else ""
        rows.append(
            (
                str(result.size_mib),
                name,
                str(len(result.runs[name])),
                f"{result.median(name, 'mib_per_s'):.1f}",
                ratio,
                f"{result.median(name, 'server_cpu_s_per_gib'):.2f}",
                f"{result.median(name, 'server_user_s_per_gib'):.2f}",
                f"{result.max_peak_growth_mib(name):.1f}",
            )
        )
    return rows


def print_table(results: list[SizeResult]) -> None:
    header = (
        "size (MiB)",
        "server",
        "runs",
        "MiB/s",
        "mw/ceiling",
        "server CPU s/GiB",
        "user s/GiB",
        "peak growth (MiB)",
    )
    rows = [row for result in results for row in table_rows(result)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        "MiB/s, CPU: medians over the runs; mw/ceiling: median of the pairs' MiB/s ratios; "
        "server CPU: user + system;\npeak growth: largest over the runs."
    )
    print_notes(results)
    print()


def print_notes(results: list[SizeResult]) -> None:
    """Say which figures rest on too few memory samples or CPU ticks to be trusted."""
    too_short = [str(r.size_mib) for r in results if r.min_samples < MIN_RELIABLE_SAMPLES]
    if too_short:
        print(
            f"Note: uploads of {', '.join(too_short)} MiB took under {MIN_RELIABLE_SAMPLES} "
            f"sampling intervals ({SAMPLE_INTERVAL_S * 1000:.0f} ms); a short-lived peak "
            "may have been missed."
        )
    coarse = [str(r.size_mib) for r in results if r.min_ticks < MIN_RELIABLE_TICKS]
    if coarse:
        print(
            f"Note: server CPU for {', '.join(coarse)} MiB rests on under {MIN_RELIABLE_TICKS} "
            f"clock ticks ({1000 / CLOCK_TICKS_PER_S:.0f} ms each) per upload: coarse."
        )


def target_verdict(results: list[SizeResult]) -> dict:
    """Whether the 512 MiB upload stayed under the memory target (reported, never fatal)."""
    for result in results:
        if result.size_mib == TARGET_SIZE_MIB:
            growth = result.max_peak_growth_mib(MIDDLEWARE)
            return {"measured": True, "growth_mib": growth, "met": growth < TARGET_GROWTH_MIB}
    return {"measured": False}


def print_verdict(verdict: dict) -> None:
    goal = f"{TARGET_SIZE_MIB} MiB upload grows server memory by < {TARGET_GROWTH_MIB} MiB"
    if not verdict["measured"]:
        print(f"Target ({goal}): not measured (no {TARGET_SIZE_MIB} MiB size in this run)")
    else:
        outcome = "MET" if verdict["met"] else "MISSED"
        print(f"Target ({goal}): {outcome} (max peak growth {verdict['growth_mib']:.1f} MiB)")


def write_json(info: dict, results: list[SizeResult], verdict: dict, seconds: float) -> None:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "upload",
        "environment": info,
        "units": {
            "throughput": "MiB/s (file bytes / request wall time)",
            "memory": "MiB",
            "server_cpu": "s per GiB of file (utime + stime of gunicorn master and worker)",
            "server_user": "s per GiB of file (utime alone)",
            "ratio": "median over pairs of middleware MiB/s / ceiling MiB/s",
        },
        "memory_measure": "sum of VmRSS of gunicorn master and workers; growth = peak - before",
        "ceiling": "benchmarks/ceiling_app.py under the same gunicorn settings: reads the body "
        "in 1 MiB chunks, hashes it (SHA-256) and writes it to a file; same multipart body, "
        "uploaded right after the middleware's in each pair",
        "results": [result.summary() for result in results],
        "target": {"size_mib": TARGET_SIZE_MIB, "max_growth_mib": TARGET_GROWTH_MIB, **verdict},
        "total_seconds": round(seconds, 1),
    }
    RESULTS_FILE.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Results written to {RESULTS_FILE}")


# Main


def parse_sizes(raw: str) -> list[int]:
    try:
        sizes = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {raw!r}") from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers (MiB): {raw!r}")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES_MIB),
        help="comma-separated file sizes in MiB (default: 1,64,512)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"uploads per size (default: {DEFAULT_REPEAT})",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def run_benchmark(sizes: list[int], repeat: int, workdir: Path) -> list[SizeResult]:
    """Start both servers, measure every size, and always stop the servers again."""
    servers: list[Server] = []
    step = "start"
    try:
        # In SERVERS order, which is each pair's: middleware first, then ceiling.
        servers.append(start_middleware(workdir))
        servers.append(start_ceiling(workdir))
        for server in servers:
            wait_until_ready(server)
            print(
                f"{server.name} gunicorn (pid {server.pid}) ready on {server.base_url}",
                flush=True,
            )
        with requests.Session() as session:
            session.auth = AUTH
            step = "setup"
            create_collection(session, servers[0].base_url)
            warm_up(session, servers, workdir)
            results = []
            for size_mib in sizes:
                step = f"{size_mib} MiB upload"
                results.append(bench_size(session, servers, workdir, size_mib, repeat))
            return results
    except (BenchmarkError, requests.RequestException) as error:
        reports = "\n".join(server_report(server) for server in servers)
        raise BenchmarkError(f"{step} failed: {error}\n{reports}") from error
    finally:
        for server in servers:
            stop_server(server)


def _exit_on_sigterm(signum, frame) -> None:
    """Turn SIGTERM into SystemExit, so that ``finally`` blocks stop gunicorn."""
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    info = machine_info()
    print_environment(info)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    try:
        results = run_benchmark(args.sizes, args.repeat, workdir)
    except BenchmarkError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted: gunicorn stopped, temporary files removed.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    print()
    print_table(results)
    verdict = target_verdict(results)
    print_verdict(verdict)
    write_json(info, results, verdict, seconds)
    print(f"Total time: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
