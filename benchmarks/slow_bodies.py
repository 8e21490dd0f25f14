"""Slow bodies against ``make serve`` (one process, eight threads): twice as many anonymous
clients as threads send a body one byte every 3 s (``POST /v1/batch`` and record
``PUT``s, 100 kB announced), while ``GET /v1/`` is timed one request after the other.
The figure: the longest ``GET /v1/`` during the attack, and from 15 s after the clients
connected (the server's settings as shipped: 1 KiB/s after 5 s of grace).

Usage: ``.venv/bin/python benchmarks/slow_bodies.py [--clients 16] [--seconds 30]`` or
``make bench-slow-bodies``; ``make bench`` runs it too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from report import print_rows

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' launcher of `make serve` and their slow clients

from tests.helpers.make_serve import start_make_serve  # noqa: E402
from tests.helpers.slow_bodies import SlowBodies, timed_gets  # noqa: E402

THREADS = 8  # the Makefile's `serve`
SETTLED = 15.0  # seconds after the clients connect


def run_slow_bodies(workdir: Path, clients: int = 2 * THREADS, seconds: float = 30.0) -> list[dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = start_make_serve(workdir)
    try:
        with SlowBodies(server.port, clients) as attack:
            began = attack.connected_at
            durations = []  # (seconds after the clients connected, seconds it took)
            while time.monotonic() < began + seconds:
                sent = time.monotonic()
                took = timed_gets(server.url, sent, sent, timeout=seconds)[0]
                durations.append((sent - began, took))
            statuses = attack.statuses()
    finally:
        server.stop()
    settled = [took for at, took in durations if at >= SETTLED]
    return [
        {
            "server": "make serve",
            "clients": clients,
            "cut": sum(status == 408 for status in statuses),
            "longest_s": round(max(took for _, took in durations), 2),
            "longest_after_15s": round(max(settled), 2) if settled else "-",
            "gets": len(durations),
        }
    ]


def print_slow_bodies(rows: list[dict]) -> None:
    print_rows(
        "Slow bodies (a byte every 3 s, 8 threads): longest GET /v1/ meanwhile (s):",
        [
            ("server", "server", "10"),
            ("clients", "clients", ">7"),
            ("cut", "408s", ">5"),
            ("gets", "GETs", ">5"),
            ("longest_s", "longest", ">8"),
            ("longest_after_15s", "from 15 s", ">9"),
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2 * THREADS)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-slow-bodies-"))
    try:
        print_slow_bodies(run_slow_bodies(workdir, args.clients, args.seconds))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
