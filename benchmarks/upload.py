"""Upload benchmark: the middleware against the plugin and a ceiling, side by side.

Users choose between this middleware and the ``kinto-attachment`` plugin; figures measured
in one run, on the same machine, the same Kinto and the same gunicorn, are the ones worth
believing. Six gunicorn servers run at once, each in its own process, on Kinto's memory
backend (one sync worker each, the deployment the streaming promise is about):

- ``middleware``: Kinto wrapped by this middleware, storing on local disk;
- ``middleware+s3``: the same, storing on S3 (moto's server, in a process of its own);
- ``middleware+gcs`` and ``plugin+gcs``: the middleware and the plugin 9.0.1 (Python
  3.12, its own virtualenv) storing on Google Cloud Storage (fake-gcs-server, in memory,
  in a process of its own), as the plugin's largest user runs it;
- ``plugin``: Kinto with the ``kinto-attachment`` plugin, in its own virtualenv
  (``plugin_env``), storing on local disk;
- ``ceiling``: ``ceiling_app.py``, the least any server must do with an upload (read the
  body, hash it, write it to disk): how fast this machine can accept an upload at all.

Each file (1 MiB to 2 GiB, random bytes and text-like lines: the plugin parses line by
line) goes to every server in turn, with the very same multipart body, in several rounds
(A B C D, A B C D, ...); ratios are taken round by round, so that a slow moment of this
shared machine weighs on both sides of a ratio. Memory is the summed VmRSS of each server's
gunicorn master and worker, sampled from /proc while the upload runs; server CPU is their
utime + stime.

Usage: ``.venv/bin/python benchmarks/upload.py [--sizes 1,64,512,2048] [--repeat 3]
[--kinds random,text] [--servers middleware,plugin,...]``; ``bench.py`` runs it with the
pass-through benchmark for ``make bench``.

Needs free disk space under $TMPDIR (default /tmp) of about four times the largest size
(the file, and its copy at each server), and free RAM of about four times it too (the
plugin holds the whole file, moto holds the objects).

The work is shared among the modules beside this script, which it imports as such (run it
as a file, not with ``-m``): ``servers``, ``s3_server`` and ``plugin_env`` start the
servers, ``client`` makes the files and sends them, ``procstat`` reads the servers' memory
and CPU from /proc, ``measure`` times the uploads, ``results`` sums them up, ``report``
prints and saves them.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from client import AUTH, KINDS, create_collection
from gcs_server import start_fake_gcs, start_gcs_middleware, start_gcs_plugin
from measure import bench_case, warm_up
from plugin_env import plugin_gcs_python, plugin_python
from report import (
    UPLOAD_LEGEND,
    machine_info,
    notes,
    print_environment,
    print_targets,
    upload_table,
    upload_targets,
    write_json,
)
from results import CaseResult
from s3_server import create_bucket, start_moto, start_s3_middleware
from servers import (
    CEILING,
    MIDDLEWARE,
    MIDDLEWARE_GCS,
    MIDDLEWARE_S3,
    PLUGIN,
    PLUGIN_GCS,
    SERVERS,
    BenchmarkError,
    Server,
    exit_on_sigterm,
    server_report,
    start_ceiling,
    start_middleware,
    start_plugin,
    stop_server,
    wait_until_ready,
)

DEFAULT_SIZES_MIB = (1, 64, 512, 2048)
DEFAULT_REPEAT = 3
DEFAULT_SETTLE_S = 1.0


def parse_list(raw: str, allowed: tuple[str, ...]) -> list[str]:
    names = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(allowed)}: {raw!r}")
    return names


def parse_sizes(raw: str) -> list[int]:
    try:
        sizes = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {raw!r}") from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers (MiB): {raw!r}")
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES_MIB),
        help="comma-separated file sizes in MiB (default: 1,64,512,2048)",
    )
    parser.add_argument(
        "--kinds",
        type=lambda raw: parse_list(raw, KINDS),
        default=list(KINDS),
        help="kinds of content (default: random,text)",
    )
    parser.add_argument(
        "--servers",
        type=lambda raw: parse_list(raw, SERVERS),
        default=list(SERVERS),
        help=f"servers to compare (default: {','.join(SERVERS)})",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=DEFAULT_SETTLE_S,
        help="seconds of rest after each upload of 64 MiB or more, once its pages are "
        f"written out (default: {DEFAULT_SETTLE_S})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"rounds per file (default: {DEFAULT_REPEAT})",
    )


@contextlib.contextmanager
def running_servers(names: list[str], workdir: Path) -> Iterator[list[Server]]:
    """The chosen servers, ready, in ``SERVERS`` order; always stopped again (moto too)."""
    servers: list[Server] = []
    moto = fake_gcs = None
    try:
        for name in SERVERS:
            if name not in names:
                continue
            if name == MIDDLEWARE:
                servers.append(start_middleware(workdir))
            elif name == MIDDLEWARE_S3:
                moto, moto_url = start_moto(workdir)
                create_bucket(moto_url)
                servers.append(start_s3_middleware(workdir, moto_url))
            elif name == PLUGIN:
                servers.append(start_plugin(workdir, plugin_python()))
            elif name == CEILING:
                servers.append(start_ceiling(workdir))
            elif name in (MIDDLEWARE_GCS, PLUGIN_GCS):
                if fake_gcs is None:
                    fake_gcs, gcs_url = start_fake_gcs(workdir)
                if name == MIDDLEWARE_GCS:
                    servers.append(start_gcs_middleware(workdir, gcs_url))
                else:
                    servers.append(start_gcs_plugin(workdir, plugin_gcs_python(), gcs_url))
        for server in servers:
            wait_until_ready(server)
            print(f"{server.name} gunicorn (pid {server.pid}) ready on {server.base_url}")
        yield servers
    finally:
        for server in servers:
            stop_server(server)
        for service in (moto, fake_gcs):
            if service is not None:
                service.terminate()
                service.wait(15)


def run_uploads(args: argparse.Namespace, workdir: Path) -> list[CaseResult]:
    """Every (size, kind) in ``args.repeat`` rounds over the chosen servers."""
    workdir.mkdir(parents=True, exist_ok=True)
    with running_servers(args.servers, workdir) as servers:
        step = "setup"
        try:
            with requests.Session() as session:
                session.auth = AUTH
                for server in servers:
                    if server.name != CEILING:
                        create_collection(session, server.base_url)
                warm_up(session, servers, workdir)
                results = []
                for size_mib in args.sizes:
                    for kind in args.kinds:
                        step = f"{size_mib} MiB {kind} upload"
                        results.append(
                            bench_case(
                                session,
                                servers,
                                workdir,
                                size_mib,
                                kind,
                                args.repeat,
                                args.settle,
                            )
                        )
                return results
        except (BenchmarkError, requests.RequestException) as error:
            reports = "\n".join(server_report(server) for server in servers)
            raise BenchmarkError(f"{step} failed: {error}\n{reports}") from error


def print_uploads(results: list[CaseResult]) -> None:
    print("Uploads through gunicorn (one sync worker per server):")
    print(upload_table(results))
    print(UPLOAD_LEGEND)
    for note in notes(results):
        print(f"Note: {note}.")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    info = machine_info()
    print_environment(info)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    try:
        results = run_uploads(args, workdir)
    except BenchmarkError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted: servers stopped, temporary files removed.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_uploads(results)
    targets = upload_targets(results)
    print_targets(targets)
    write_json(
        "upload",
        {
            "environment": info,
            "uploads": [result.summary() for result in results],
            "targets": targets,
            "total_seconds": round(time.monotonic() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
