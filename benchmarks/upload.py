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

Then the same uploads go to the middleware storing on S3, moto's server standing in for
it (``--s3-sizes``, default 512; ``--no-s3`` to skip): throughput, server CPU and the
server's peak memory growth again, moto's own memory not counted.

Needs about three times the largest size in free disk space under $TMPDIR (default /tmp):
the generated file, its stored copy, and the ceiling's copy while it is being written.

The work is shared among the modules beside this script, which it imports as such (run it
as a file, not with ``-m``): ``servers`` starts and stops the two gunicorns, ``client``
makes the files and sends them, ``procstat`` reads the servers' memory and CPU from /proc,
``measure`` times the uploads, ``results`` sums them up, ``report`` prints and saves them.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import requests

from client import AUTH, create_collection
from measure import bench_size, warm_up
from report import (
    machine_info,
    print_environment,
    print_s3_table,
    print_table,
    print_verdict,
    s3_summary,
    target_verdict,
    write_json,
)
from results import SizeResult
from s3_upload import run_s3_benchmark
from servers import (
    BenchmarkError,
    Server,
    server_report,
    start_ceiling,
    start_middleware,
    stop_server,
    wait_until_ready,
)

DEFAULT_SIZES_MIB = (1, 64, 512)
DEFAULT_S3_SIZES_MIB = (512,)
DEFAULT_REPEAT = 3


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
    parser.add_argument(
        "--s3-sizes",
        type=parse_sizes,
        default=list(DEFAULT_S3_SIZES_MIB),
        help="comma-separated file sizes in MiB uploaded to S3 (moto) (default: 512)",
    )
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 uploads")
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
    s3_results = {}
    try:
        results = run_benchmark(args.sizes, args.repeat, workdir)
        if not args.no_s3:
            s3_results = run_s3_benchmark(args.s3_sizes, args.repeat, workdir)
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
    s3 = s3_summary(s3_results) if s3_results else None
    if s3:
        print()
        print_s3_table(s3)
    write_json(info, results, verdict, seconds, s3)
    print(f"Total time: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
