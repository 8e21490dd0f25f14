"""Pass-through cost: what the middleware adds to requests that are not about attachments.

Two gunicorns with the same settings (2 sync workers) serve Kinto from the same ini
(memory backend, basic auth): bare, and wrapped by the middleware. Each is sent GETs and
PATCHes of one small record (the PATCH body, ``{"data": {"title": "patched"}}``, is read
and searched for ``attachment`` by the middleware), by one client at a time and by 8
concurrent clients. Over real HTTP, because that is how a deployment pays for the
middleware: parsing, sockets and worker scheduling dilute its cost, or not.

Figures, per batch of requests:

- server CPU per request: the CPU time (user + system) of the gunicorn master and its
  workers, read before and after the batch. The client shares the machine's two cores
  with the server, so wall-clock time also measures the client and whatever else runs;
  the server's own CPU time is what the middleware adds to. Read from
  /proc/PID/schedstat, in nanoseconds: /proc/PID/stat's utime + stime is the same sum cut
  to clock ticks (10 ms), over 1% of a batch's CPU.
- requests per second, wall clock: what a client sees, noisier.

The two servers take turns, batch by batch, the order alternating from round to round
(bare, wrapped, wrapped, bare, ...), and the ratio wrapped/bare is taken pair by pair: a
slow spell of the machine then weighs on both terms of a ratio. Reported: the median over
the rounds of each figure and of the ratios. Every answer's status is checked (a 401 or a
404 would look fast). The target, read from the table rather than asserted: wrapped CPU
per request at most 1.03 times bare's.

A ratio of two Kinto runs still wobbles by a few percent on a busy machine, so the
dispatch itself is also timed in-process against a no-op app ("dispatch alone"): that is
the whole cost the middleware adds to a request it does not handle.

Usage: ``.venv/bin/python benchmarks/passthrough.py [--rounds 25] [--requests 400]``;
results are printed and written to benchmarks/results/passthrough.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import load_client
import passthrough_servers as servers
from kinto_attachment_mw import AttachmentMiddleware
from passthrough_app import AUTHORIZATION, RECORD_PATH
from procstat import CLOCK_TICKS_PER_S, cpu_times, process_tree

METHODS = ("GET", "PATCH")
PATCH_BODY = b'{"data": {"title": "patched"}}'
#: Mode name -> number of concurrent clients.
MODES = {"sequential": 1, "concurrent-8": 8}
SERVER_NAMES = (servers.BARE, servers.WRAPPED)
TARGET_CPU_RATIO = 1.03
DEFAULT_ROUNDS = 25
DEFAULT_REQUESTS = 400
WARMUP_REQUESTS = 200
RESULTS_FILE = servers.BENCHMARKS_DIR / "results" / "passthrough.json"


class BenchmarkError(Exception):
    """A failed request or a server gone: the numbers would mean nothing."""


@dataclass
class Batch:
    """One batch of requests to one server.

    ``other_cores``: CPU used meanwhile by processes other than this benchmark's (client,
    servers), in cores; the machine is shared, and a busy neighbour slows both the client
    and the server, and inflates the server's CPU time too (caches, and a virtual CPU
    taken away by the host is not told apart from a busy one).
    """

    requests: int
    seconds: float
    cpu_s: float
    #: User time alone, from /proc/PID/stat: in clock ticks.
    user_s: float
    other_cores: float

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s / self.requests * 1000

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def request_targets(port: int) -> dict[str, load_client.Target]:
    """The GET and the PATCH of the seeded record, as bytes ready to send to ``port``."""
    host = servers.HOST
    headers = {"Authorization": AUTHORIZATION}
    patch_headers = {**headers, "Content-Type": "application/json"}
    return {
        "GET": load_client.Target(
            host, port, load_client.build_request("GET", RECORD_PATH, host, port, headers)
        ),
        "PATCH": load_client.Target(
            host,
            port,
            load_client.build_request("PATCH", RECORD_PATH, host, port, patch_headers, PATCH_BODY),
        ),
    }


def measured_batch(
    server: servers.Server,
    target: load_client.Target,
    count: int,
    pool: load_client.ClientPool | None,
) -> Batch:
    """``count`` requests, sequential (no pool) or from the pool's clients, with the
    server's CPU read around them. A worker replaced meanwhile would make the CPU wrong."""
    pids = process_tree(server.pid)
    ours = process_tree(os.getpid())  # this client, its pool, both servers
    busy_before, ours_before = machine_busy_s(), sum(cpu_times(ours))
    cpu_before, user_before = cpu_seconds(pids), cpu_times(pids)[0]
    if pool is None:
        seconds = load_client.run_batch(target, count)
    else:
        count, seconds = pool.run_batch(target, count)
    cpu_after, user_after = cpu_seconds(pids), cpu_times(pids)[0]
    busy_after, ours_after = machine_busy_s(), sum(cpu_times(ours))
    if sorted(process_tree(server.pid)) != sorted(pids):
        raise BenchmarkError(f"{server.name}: its processes changed during a batch")
    other_cores = max(0.0, (busy_after - busy_before) - (ours_after - ours_before)) / seconds
    return Batch(count, seconds, cpu_after - cpu_before, user_after - user_before, other_cores)


def cpu_seconds(pids: list[int]) -> float:
    """Summed CPU time (user + system) of ``pids``, to the nanosecond where the kernel
    says (/proc/PID/schedstat: time spent running), else in clock ticks (/proc/PID/stat)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as schedstat:
                total += int(schedstat.read().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError):  # no schedstat, or a process gone
            total += sum(cpu_times([pid]))
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and iowait): /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_S


def summarize(method: str, mode: str, pairs: list[dict[str, Batch]]) -> dict:
    """Medians over the rounds, and the medians of the round-by-round ratios."""

    def median(name: str, figure: str) -> float:
        return statistics.median(getattr(pair[name], figure) for pair in pairs)

    def median_ratio(figure: str) -> float:
        return statistics.median(
            getattr(pair[servers.WRAPPED], figure) / getattr(pair[servers.BARE], figure)
            for pair in pairs
        )

    others = [pair[name].other_cores for pair in pairs for name in SERVER_NAMES]
    return {
        "method": method,
        "mode": mode,
        "clients": MODES[mode],
        "runs": len(pairs),
        **{
            name: {
                "cpu_ms_per_request": round(median(name, "cpu_ms_per_request"), 4),
                "rps": round(median(name, "rps"), 1),
            }
            for name in SERVER_NAMES
        },
        "cpu_ratio": round(median_ratio("cpu_ms_per_request"), 4),
        "rps_ratio": round(median_ratio("rps"), 4),
        "other_cores": {
            "median": round(statistics.median(others), 3),
            "max": round(max(others), 3),
        },
        "details": [
            {
                name: {
                    **asdict(pair[name]),
                    "seconds": round(pair[name].seconds, 4),
                    "other_cores": round(pair[name].other_cores, 3),
                }
                for name in SERVER_NAMES
            }
            for pair in pairs
        ],
    }


def run_passthrough(
    workdir: Path,
    rounds: int = DEFAULT_ROUNDS,
    requests: int = DEFAULT_REQUESTS,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Start both gunicorns under ``workdir``, measure, and always stop them again.

    Each round runs every (method, mode) once on each server, ``requests`` requests per
    batch. Returns a JSON-able dict: see :func:`rows` for the figures it holds.
    """
    log = log or (lambda line: None)
    started = time.monotonic()
    ini = servers.write_ini(workdir)
    running: list[servers.Server] = []
    cells = [(method, mode) for mode in MODES for method in METHODS]
    pairs: dict[tuple[str, str], list[dict[str, Batch]]] = {cell: [] for cell in cells}
    try:
        for name in SERVER_NAMES:
            running.append(servers.start(name, workdir, ini))
        targets = {}
        for server in running:
            targets[server.name] = request_targets(server.port)
            servers.wait_until_ready(server, targets[server.name]["GET"])
            log(f"{server.name} gunicorn (pid {server.pid}) ready on port {server.port}")
        with load_client.ClientPool(max(MODES.values())) as pool:
            pools = {mode: pool if clients > 1 else None for mode, clients in MODES.items()}
            for server in running:  # warm-up: first requests, imports, caches
                for method, mode in cells:
                    target = targets[server.name][method]
                    measured_batch(server, target, WARMUP_REQUESTS, pools[mode])
            for index in range(rounds):
                order = running if index % 2 == 0 else running[::-1]
                for method, mode in cells:
                    pair = {
                        server.name: measured_batch(
                            server, targets[server.name][method], requests, pools[mode]
                        )
                        for server in order
                    }
                    pairs[method, mode].append(pair)
                log(f"round {index + 1}/{rounds} done ({time.monotonic() - started:.0f} s)")
    except (OSError, load_client.LoadError, servers.ServerError) as error:
        reports = "\n".join(server.report() for server in running)
        raise BenchmarkError(f"{error}\n{reports}") from error
    finally:
        for server in running:
            servers.stop(server)
    return {
        "benchmark": "passthrough",
        "gunicorn": " ".join(servers.GUNICORN_SETTINGS),
        "rounds": rounds,
        "requests_per_batch": requests,
        "units": {
            "cpu_ms_per_request": "ms of server CPU (user + system, gunicorn master and "
            "workers, /proc/PID/schedstat) per request, median over the rounds",
            "rps": "requests per second, wall clock, median over the rounds",
            "cpu_ratio": "median over the rounds of wrapped / bare CPU per request",
            "rps_ratio": "median over the rounds of wrapped / bare requests per second",
            "dispatch_alone_us": "µs the middleware adds in-process around a no-op app",
            "other_cores": "CPU used by other processes during the batches, in cores",
        },
        "results": [summarize(method, mode, pairs[method, mode]) for method, mode in cells],
        "target_cpu_ratio": TARGET_CPU_RATIO,
        "dispatch_alone_us": {method: round(dispatch_overhead_us(method), 3) for method in METHODS},
        "seconds": round(time.monotonic() - started, 1),
    }


HEADER = (
    "request",
    "clients",
    "runs",
    "bare CPU ms",
    "wrapped CPU ms",
    "CPU ratio",
    "bare req/s",
    "wrapped req/s",
    "req/s ratio",
)


def rows(result: dict) -> list[tuple[str, ...]]:
    """One table row (strings, in :data:`HEADER`'s order) per (method, mode)."""
    return [
        (
            cell["method"],
            str(cell["clients"]),
            str(cell["runs"]),
            f"{cell[servers.BARE]['cpu_ms_per_request']:.3f}",
            f"{cell[servers.WRAPPED]['cpu_ms_per_request']:.3f}",
            f"{cell['cpu_ratio']:.3f}",
            f"{cell[servers.BARE]['rps']:.0f}",
            f"{cell[servers.WRAPPED]['rps']:.0f}",
            f"{cell['rps_ratio']:.3f}",
        )
        for cell in result["results"]
    ]


def print_table(result: dict) -> None:
    table = [HEADER, *rows(result)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    table.insert(1, tuple("-" * width for width in widths))
    print(
        f"Pass-through: a small record over HTTP, gunicorn {result['gunicorn']}, "
        "bare Kinto against Kinto wrapped"
    )
    for row in table:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"CPU ms: server CPU per request; medians over {result['rounds']} interleaved rounds "
        f"of {result['requests_per_batch']} requests; ratios (wrapped/bare): medians of the "
        f"rounds' ratios. Target: CPU ratio <= {result['target_cpu_ratio']}."
    )
    others = [cell["other_cores"] for cell in result["results"]]
    print(
        "Other processes on the machine during the batches: median "
        f"{statistics.median(other['median'] for other in others):.2f} cores, "
        f"max {max(other['max'] for other in others):.2f}."
    )
    dispatch = result["dispatch_alone_us"]
    print(
        "Dispatch alone (in-process, around a no-op app): "
        + ", ".join(f"{method} {us:.2f} µs" for method, us in dispatch.items())
    )


def dispatch_overhead_us(method: str = "GET", count: int = 100_000) -> float:
    """What deciding "not mine" costs per request, around an app that does nothing.

    For a PATCH that includes reading the body and handing it on.
    """

    def noop(environ, start_response):
        return [b""]

    with tempfile.TemporaryDirectory() as root:
        wrapped = AttachmentMiddleware(noop, {"kinto.attachment.base_path": root})
    environ = {"REQUEST_METHOD": method, "PATH_INFO": RECORD_PATH}
    if method == "PATCH":
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(PATCH_BODY)))

    def fresh_environ() -> dict:
        return {**environ, "wsgi.input": io.BytesIO(PATCH_BODY)}

    bare_s = min(timeit.repeat(lambda: noop(fresh_environ(), None), number=count, repeat=5))
    wrapped_s = min(timeit.repeat(lambda: wrapped(fresh_environ(), None), number=count, repeat=5))
    return (wrapped_s - bare_s) / count * 1e6


def environment() -> dict:
    """What the numbers depend on."""
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
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


def _exit_on_sigterm(signum, frame) -> None:
    """Turn SIGTERM into SystemExit, so that ``finally`` blocks stop gunicorn."""
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"interleaved rounds (default: {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"requests per batch (default: {DEFAULT_REQUESTS})",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < max(MODES.values()):
        parser.error(f"--rounds must be at least 1, --requests at least {max(MODES.values())}")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="bench-passthrough-"))
    try:
        result = run_passthrough(workdir, args.rounds, args.requests)
    except BenchmarkError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted: gunicorn stopped, temporary files removed.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_table(result)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps({"environment": environment(), **result}, indent=2) + "\n")
    print(f"Results written to {RESULTS_FILE} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
