"""Pass-through cost: what the middleware adds to requests that are not about attachments.

Two gunicorns with the same settings (2 sync workers) serve Kinto from the same ini
(memory backend, basic auth): bare, and wrapped by the middleware. Both are sent GETs and
PATCHes of one small record (the PATCH body, ``{"data": {"title": "patched"}}``, is read
and searched for ``attachment`` by the middleware), by one client and by 8 concurrent
clients. Over real HTTP, because that is how a deployment pays for the middleware:
parsing, sockets and worker scheduling dilute its cost, or not.

Figures:

- server CPU per request: the CPU time (user + system) of the gunicorn master and its
  workers, read before and after a round's requests. The client shares the machine's two
  cores with the server, so wall-clock time also measures the client and whatever else
  runs; the server's own CPU time is what the middleware adds to. Read from
  /proc/PID/schedstat, in nanoseconds: /proc/PID/stat's utime + stime is the same sum cut
  to clock ticks (10 ms), several percent of a round's CPU.
- requests per second, wall clock: what a client sees, noisier.

The machine is shared, and what else runs changes from one tenth of a second to the next,
so the servers take turns closely and the ratio wrapped/bare is taken round by round:

- one client: it alternates request by request (bare, wrapped, bare, wrapped, ...), both
  servers' CPU read around the round; requests per second are one over the mean time of
  a server's requests;
- 8 clients: each server in turn gets a batch from all 8 at once, the order alternating
  from round to round (bare, wrapped, wrapped, bare, ...).

Reported: the median over the rounds of each figure and of the ratios, with a 95%
confidence interval for the median CPU ratio (from the order statistics, no assumption on
the spread). Every answer is checked (a 401 or a 404 would look fast). The CPU used by
other processes meanwhile is shown too. The target, read from the table rather than
asserted: wrapped CPU per request at most 1.03 times bare's.

The dispatch itself is also timed in-process against a no-op app ("dispatch alone"):
the whole cost the middleware adds to a request it does not handle, without Kinto and
gunicorn around it.

Usage: ``.venv/bin/python benchmarks/passthrough.py [--rounds 60] [--requests 200]``;
results are printed and written to benchmarks/results/passthrough.json.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import signal
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import load_client
import passthrough_servers as servers
from kinto_attachment_mw import AttachmentMiddleware
from passthrough_app import AUTHORIZATION, RECORD_PATH
from report import machine_info, print_passthrough
from servers import exit_on_sigterm, stop_server

METHODS = ("GET", "PATCH")
PATCH_BODY = b'{"data": {"title": "patched"}}'
CLIENTS = 8
SEQUENTIAL, CONCURRENT = "sequential", f"concurrent-{CLIENTS}"
#: Mode name -> number of concurrent clients.
MODES = {SEQUENTIAL: 1, CONCURRENT: CLIENTS}
SERVER_NAMES = (servers.BARE, servers.WRAPPED)
TARGET_CPU_RATIO = 1.03
DEFAULT_ROUNDS = 60
DEFAULT_REQUESTS = 200
WARMUP_REQUESTS = 200
RESULTS_FILE = servers.BENCHMARKS_DIR / "results" / "passthrough.json"


class BenchmarkError(Exception):
    """A failed request or a server gone: the numbers would mean nothing."""


@dataclass
class Batch:
    """One server's requests of a round, and what they cost.

    ``other_cores``: CPU used meanwhile by processes other than this benchmark's (client,
    servers), in cores; the machine is shared, and a busy neighbour slows both the client
    and the server, and inflates the server's CPU time too (caches, and a virtual CPU
    taken away by the host is not told apart from a busy one).
    """

    requests: int
    seconds: float
    cpu_s: float
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
    processes: servers.Processes,
    server: servers.Server,
    target: load_client.Target,
    count: int,
    pool: load_client.ClientPool,
) -> Batch:
    """About ``count`` requests from the pool's clients at once, to one server."""
    before = processes.usage()
    count, seconds = pool.run_batch(target, count)
    used = processes.usage() - before
    return Batch(count, seconds, used.servers[server.name], used.others / seconds)


def measured_alternating(
    processes: servers.Processes,
    order: list[servers.Server],
    targets: dict[str, dict[str, load_client.Target]],
    method: str,
    count: int,
) -> dict[str, Batch]:
    """``count`` requests to each server from one client, request by request in turn;
    each server's time is that of its own requests."""
    before = processes.usage()
    started = time.perf_counter()
    spent = load_client.run_alternating([targets[s.name][method] for s in order], count)
    wall_s = time.perf_counter() - started
    used = processes.usage() - before
    return {
        server.name: Batch(count, seconds, used.servers[server.name], used.others / wall_s)
        for server, seconds in zip(order, spent, strict=True)
    }


def median_interval(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """A 95% confidence interval for the median of ``values``, from their order
    statistics (the normal approximation of the binomial): no assumption on the spread.
    Under 6 values it cannot reach 95%: the smallest and largest are returned."""
    ordered = sorted(values)
    count = len(ordered)
    rank = max(1, math.floor((count - z * math.sqrt(count)) / 2))
    return ordered[rank - 1], ordered[count - rank]


def summarize(method: str, mode: str, pairs: list[dict[str, Batch]]) -> dict:
    """Medians over the rounds, and the medians of the round-by-round ratios."""

    def median(name: str, figure: str) -> float:
        return statistics.median(getattr(pair[name], figure) for pair in pairs)

    def ratios(figure: str) -> list[float]:
        return [
            getattr(pair[servers.WRAPPED], figure) / getattr(pair[servers.BARE], figure)
            for pair in pairs
        ]

    cpu_ratios = ratios("cpu_ms_per_request")
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
        "cpu_ratio": round(statistics.median(cpu_ratios), 4),
        "cpu_ratio_95ci": [round(bound, 4) for bound in median_interval(cpu_ratios)],
        "rps_ratio": round(statistics.median(ratios("rps")), 4),
        "other_cores": {
            "median": round(statistics.median(others), 3),
            "max": round(max(others), 3),
        },
        "details": [
            {
                name: {
                    "requests": pair[name].requests,
                    "seconds": round(pair[name].seconds, 4),
                    "cpu_s": round(pair[name].cpu_s, 6),
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

    Each round sends ``requests`` requests of each (method, mode) to each server; a first
    round of :data:`WARMUP_REQUESTS` is not counted. Returns a JSON-able dict::

        {"benchmark": "passthrough", "gunicorn": "--workers 2 ...", "rounds": 60,
         "requests_per_batch": 200, "units": {...}, "target_cpu_ratio": 1.03,
         "results": [  # (GET, PATCH) x (sequential, concurrent-8), in that order
             {"method": "GET", "mode": "sequential", "clients": 1, "runs": 60,
              "bare": {"cpu_ms_per_request": ..., "rps": ...}, "wrapped": {...},
              "cpu_ratio": ..., "cpu_ratio_95ci": [low, high], "rps_ratio": ...,
              "other_cores": {"median": ..., "max": ...},
              "details": [{"bare": {"requests", "seconds", "cpu_s", "other_cores"},
                           "wrapped": {...}}, ...]},  # one per round
             ...],
         "dispatch_alone_us": {"GET": ..., "PATCH": ...}, "seconds": ...}

    :func:`rows` turns it into table rows. Whatever ends the run (an error, Ctrl-C, a
    ``SystemExit`` from a SIGTERM handler), the servers and the client pool are stopped.
    """
    log = log or (lambda line: None)
    started = time.monotonic()
    ini = servers.write_ini(workdir)
    running: list[servers.Server] = []
    cells = [(method, mode) for mode in (SEQUENTIAL, CONCURRENT) for method in METHODS]
    pairs: dict[tuple[str, str], list[dict[str, Batch]]] = {cell: [] for cell in cells}
    try:
        for name in SERVER_NAMES:
            running.append(servers.start(name, workdir, ini))
        targets = {}
        for server in running:
            targets[server.name] = request_targets(server.port)
            servers.wait_until_ready(server, targets[server.name]["GET"])
            log(f"{server.name} gunicorn (pid {server.pid}) ready on port {server.port}")
        with load_client.ClientPool(CLIENTS) as pool:
            processes = servers.Processes.scan(running)
            for index in range(rounds + 1):  # round 0: warm-up (imports, caches), dropped
                count = requests if index else WARMUP_REQUESTS
                order = running if index % 2 == 0 else running[::-1]
                for method in METHODS:
                    pair = measured_alternating(processes, order, targets, method, count)
                    if index:
                        pairs[method, SEQUENTIAL].append(pair)
                for method in METHODS:
                    pair = {
                        server.name: measured_batch(
                            processes, server, targets[server.name][method], count, pool
                        )
                        for server in order
                    }
                    if index:
                        pairs[method, CONCURRENT].append(pair)
                processes.check(running)
                if index and (index % 10 == 0 or index == rounds):
                    log(f"round {index}/{rounds} ({time.monotonic() - started:.0f} s)")
    except (OSError, load_client.LoadError, servers.ServerError) as error:
        reports = "\n".join(server.report() for server in running)
        raise BenchmarkError(f"{error}\n{reports}") from error
    finally:
        for server in running:
            stop_server(server)
    return {
        "benchmark": "passthrough",
        "gunicorn": " ".join(servers.GUNICORN_SETTINGS),
        "rounds": rounds,
        "requests_per_batch": requests,
        "units": {
            "cpu_ms_per_request": "ms of server CPU (user + system, gunicorn master and "
            "workers, /proc/PID/schedstat) per request, median over the rounds",
            "rps": "requests per second, wall clock, median over the rounds; one client: "
            "1 / mean time of the server's requests",
            "cpu_ratio": "median over the rounds of wrapped / bare CPU per request",
            "cpu_ratio_95ci": "95% confidence interval of that median (order statistics)",
            "rps_ratio": "median over the rounds of wrapped / bare requests per second",
            "dispatch_alone_us": "µs the middleware adds in-process around a no-op app",
            "other_cores": "CPU used by other processes meanwhile, in cores (/proc/stat)",
        },
        "results": [summarize(method, mode, pairs[method, mode]) for method, mode in cells],
        "target_cpu_ratio": TARGET_CPU_RATIO,
        "dispatch_alone_us": {method: round(dispatch_overhead_us(method), 3) for method in METHODS},
        "seconds": round(time.monotonic() - started, 1),
    }


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"rounds, the servers taking turns within each (default: {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"requests per server, method and mode in a round (default: {DEFAULT_REQUESTS})",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < max(MODES.values()):
        parser.error(f"--rounds must be at least 1, --requests at least {max(MODES.values())}")
    signal.signal(signal.SIGTERM, exit_on_sigterm)
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
    print_passthrough(result)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps({"environment": machine_info(), **result}, indent=2) + "\n")
    print(f"Results written to {RESULTS_FILE} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
