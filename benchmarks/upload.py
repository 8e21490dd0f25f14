"""Upload benchmark: throughput and server memory of large attachment uploads.

The middleware promises to stream uploads: a 512 MiB file should go through a gunicorn
worker without the worker holding it in memory. This script checks that promise the way a
deployment would see it, over real HTTP against a real gunicorn, and measures throughput
on the way. It starts Kinto (memory backend) wrapped by the middleware in a temporary
directory, uploads random files of a few sizes, and samples the server's resident memory
from /proc while each upload runs.

Usage: ``.venv/bin/python benchmarks/upload.py [--sizes 1,64,512] [--repeat 3]``

Throughput is reported in MiB/s (file bytes, not multipart bytes, over the wall-clock time
of the whole request, response included). Memory is the summed VmRSS of the gunicorn
master and its workers; "peak growth" is the highest value seen during an upload minus the
value just before it. Results are printed and written to benchmarks/results/upload.json.

Needs about twice the largest size in free disk space under $TMPDIR (default /tmp): the
generated file, and its stored copy.
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
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import requests
from requests_toolbelt import MultipartEncoder

MIB = 1024 * 1024
DEFAULT_SIZES_MIB = (1, 64, 512)
DEFAULT_REPEAT = 3
#: The 512 MiB upload should grow the server's memory by less than this.
TARGET_SIZE_MIB = 512
TARGET_GROWTH_MIB = 32
SAMPLE_INTERVAL_S = 0.02
#: Fewer samples than this per upload, and the peak is a guess (said so under the table).
MIN_RELIABLE_SAMPLES = 5
WRITE_CHUNK = MIB
STARTUP_TIMEOUT_S = 60
UPLOAD_TIMEOUT_S = 600
AUTH = ("alice", "secret")
BUCKET, COLLECTION = "b", "c"
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "upload.json"

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


# Server memory, from /proc


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


# The server


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


def start_server(ini: Path, port: int, log: Path) -> subprocess.Popen:
    """gunicorn with one sync worker, the deployment the streaming promise is about.

    In its own session, so that Ctrl-C reaches only this script, which then stops the
    server itself (in ``finally``) and can wait for it.
    """
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "kinto_attachment_mw.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        "sync",
        "--timeout",
        str(UPLOAD_TIMEOUT_S),
        "--no-control-socket",
    ]
    env = {**os.environ, "KINTO_INI": str(ini)}
    with open(log, "wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=ini.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_ready(server: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchmarkError(f"gunicorn exited with {server.returncode}:\n{tail(log)}")
        try:
            if requests.get(f"{base_url}/v1/__heartbeat__", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still importing
            pass
        time.sleep(0.2)
    raise BenchmarkError(f"no heartbeat after {STARTUP_TIMEOUT_S} s:\n{tail(log)}")


def stop_server(server: subprocess.Popen) -> None:
    """Quick shutdown (SIGINT) of the master; kill its whole session if it hangs."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


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


def create_collection(session: requests.Session, base_url: str) -> None:
    for path in (f"/v1/buckets/{BUCKET}", f"/v1/buckets/{BUCKET}/collections/{COLLECTION}"):
        response = session.put(base_url + path, json={}, timeout=30)
        if response.status_code not in (200, 201):
            raise BenchmarkError(f"PUT {path}: {response.status_code} {response.text[:500]}")


def upload(session: requests.Session, base_url: str, record_id: str, path: Path) -> dict:
    """POST the file as multipart field ``attachment``, streamed from disk.

    MultipartEncoder reads the open file as the socket accepts bytes and gives requests the
    body's length, so the client sends a Content-Length (as browsers do) in constant memory.
    """
    url = f"{base_url}/v1/buckets/{BUCKET}/collections/{COLLECTION}/records/{record_id}/attachment"
    with open(path, "rb") as file:
        body = MultipartEncoder({"attachment": (path.name, file, "application/octet-stream")})
        response = session.post(
            url,
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=(10, UPLOAD_TIMEOUT_S),
        )
    if response.status_code not in (200, 201):
        raise BenchmarkError(f"upload of {path.name}: {response.status_code} {response.text[:500]}")
    return response.json()


def check_metadata(metadata: dict, sha256: str, size: int, name: str) -> None:
    """The server must have received every byte, unchanged."""
    if metadata.get("hash") != sha256 or metadata.get("size") != size:
        raise BenchmarkError(
            f"upload of {name}: server says hash={metadata.get('hash')} "
            f"size={metadata.get('size')}, expected hash={sha256} size={size}"
        )


# Measuring


@dataclass
class Run:
    seconds: float
    mib_per_s: float
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    peak_growth_mib: float
    samples: int
    processes: int


@dataclass
class SizeResult:
    size_mib: int
    runs: list[Run] = field(default_factory=list)

    @property
    def median_mib_per_s(self) -> float:
        return statistics.median(run.mib_per_s for run in self.runs)

    @property
    def max_peak_growth_mib(self) -> float:
        return max(run.peak_growth_mib for run in self.runs)

    @property
    def min_samples(self) -> int:
        return min(run.samples for run in self.runs)

    def summary(self) -> dict:
        return {
            "size_mib": self.size_mib,
            "runs": len(self.runs),
            "median_mib_per_s": round(self.median_mib_per_s, 1),
            "max_peak_growth_mib": round(self.max_peak_growth_mib, 1),
            "details": [asdict(run) for run in self.runs],
        }


def measured_upload(
    session: requests.Session,
    base_url: str,
    server_pid: int,
    record_id: str,
    path: Path,
    sha256: str,
    size: int,
) -> Run:
    """One upload, timed, with the server's memory sampled around and during it."""
    pids = process_tree(server_pid)
    before = rss_kib(pids)
    with MemorySampler(pids) as sampler:
        started = time.perf_counter()
        metadata = upload(session, base_url, record_id, path)
        seconds = time.perf_counter() - started
    after = rss_kib(pids)
    check_metadata(metadata, sha256, size, path.name)
    peak = max(sampler.peak_kib, after)
    return Run(
        seconds=round(seconds, 3),
        mib_per_s=round(size / MIB / seconds, 1),
        rss_before_mib=round(before / 1024, 1),
        rss_peak_mib=round(peak / 1024, 1),
        rss_after_mib=round(after / 1024, 1),
        peak_growth_mib=round((peak - before) / 1024, 1),
        samples=sampler.samples,
        processes=len(pids),
    )


def warm_up(session: requests.Session, base_url: str, workdir: Path) -> None:
    """A small upload first, so that imports and first-request setup are not measured."""
    path = workdir / "warmup.bin"
    sha256 = make_random_file(path, 64 * 1024)
    for _ in range(2):
        check_metadata(upload(session, base_url, "r-warmup", path), sha256, 64 * 1024, path.name)
    path.unlink()


def bench_size(
    session: requests.Session,
    base_url: str,
    server_pid: int,
    workdir: Path,
    size_mib: int,
    repeat: int,
) -> SizeResult:
    size = size_mib * MIB
    path = workdir / f"random-{size_mib}mib.bin"
    sha256 = make_random_file(path, size)
    result = SizeResult(size_mib)
    try:
        for index in range(1, repeat + 1):
            run = measured_upload(
                session, base_url, server_pid, f"r-{size_mib}", path, sha256, size
            )
            result.runs.append(run)
            print(
                f"  {size_mib} MiB, run {index}/{repeat}: {run.seconds:.2f} s, "
                f"{run.mib_per_s:.1f} MiB/s, server RSS {run.rss_before_mib:.1f} -> "
                f"peak {run.rss_peak_mib:.1f} ({run.peak_growth_mib:+.1f}) -> "
                f"after {run.rss_after_mib:.1f} MiB "
                f"(processes: {run.processes}, samples: {run.samples})",
                flush=True,
            )
    finally:
        path.unlink()
    return result


# Reporting


def print_environment(info: dict) -> None:
    print(f"Date:     {info['date']}")
    print(f"Machine:  {info['cores']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM")
    print(f"Platform: {info['platform']}")
    print(
        f"Versions: Python {info['python']}, Kinto {info['kinto']}, "
        f"gunicorn {info['gunicorn']}, kinto-attachment-mw {info['kinto_attachment_mw']}"
    )
    print()


def print_table(results: list[SizeResult]) -> None:
    header = ("size (MiB)", "runs", "median MiB/s", "peak memory growth (MiB)")
    rows = [
        (
            str(r.size_mib),
            str(len(r.runs)),
            f"{r.median_mib_per_s:.1f}",
            f"{r.max_peak_growth_mib:.1f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    too_short = [str(r.size_mib) for r in results if r.min_samples < MIN_RELIABLE_SAMPLES]
    if too_short:
        print(
            f"Note: uploads of {', '.join(too_short)} MiB took under {MIN_RELIABLE_SAMPLES} "
            f"sampling intervals ({SAMPLE_INTERVAL_S * 1000:.0f} ms); a short-lived peak "
            "may have been missed."
        )
    print()


def target_verdict(results: list[SizeResult]) -> dict:
    """Whether the 512 MiB upload stayed under the memory target (reported, never fatal)."""
    for result in results:
        if result.size_mib == TARGET_SIZE_MIB:
            growth = result.max_peak_growth_mib
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
        "units": {"throughput": "MiB/s (file bytes / request wall time)", "memory": "MiB"},
        "memory_measure": "sum of VmRSS of gunicorn master and workers; growth = peak - before",
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
    """Start the server, measure every size, and always stop the server again."""
    log = workdir / "gunicorn.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(write_ini(workdir), port, log)
    step = "start"
    try:
        wait_until_ready(server, base_url, log)
        print(f"gunicorn (pid {server.pid}) ready on {base_url}", flush=True)
        with requests.Session() as session:
            session.auth = AUTH
            step = "setup"
            create_collection(session, base_url)
            warm_up(session, base_url, workdir)
            results = []
            for size_mib in sizes:
                step = f"{size_mib} MiB upload"
                results.append(bench_size(session, base_url, server.pid, workdir, size_mib, repeat))
            return results
    except (BenchmarkError, requests.RequestException) as error:
        state = "running" if server.poll() is None else f"exited ({server.returncode})"
        raise BenchmarkError(
            f"{step} failed: {error}\ngunicorn is {state}; end of its log:\n{tail(log)}"
        ) from error
    finally:
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
