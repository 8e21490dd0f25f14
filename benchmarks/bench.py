"""``make bench``: uploads side by side with the plugin and a ceiling, then pass-through cost.

Runs ``upload.py``'s comparison (the middleware on local disk and on S3, the
``kinto-attachment`` plugin, the ceiling; 1 MiB to 2 GiB, random and text-like files) and
``passthrough.py``'s (GET and PATCH of a small record, bare Kinto against Kinto wrapped,
sequential and with 8 clients) and ``refused_bodies.py``'s (the memory an anonymous
100 MiB record write costs) and ``downloads.py``'s (a 512 MiB permission-checked download
against nginx sending the same file), prints the tables and the targets, and writes everything
to benchmarks/results/bench.json. The tables are reStructuredText, as README.rst shows them.

Usage: ``.venv/bin/python benchmarks/bench.py [upload.py's options] [--rounds N]
[--requests N] [--no-passthrough] [--no-refused] [--no-downloads] [--no-resumable]
[--no-slow-bodies]``; ``slow_bodies.py`` prints the longest ``GET /v1/`` while anonymous
clients trickle bodies.
About 25 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import passthrough
from downloads import print_downloads, run_downloads
from refused_bodies import print_refused_bodies, run_refused_bodies
from report import (
    growth_target,
    machine_info,
    passthrough_targets,
    print_environment,
    print_passthrough,
    print_targets,
    upload_targets,
    write_json,
)
from resumable import print_resumable, run_resumable
from servers import BenchmarkError, exit_on_sigterm
from slow_bodies import print_slow_bodies, run_slow_bodies
from upload import add_arguments, print_uploads, run_uploads


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=passthrough.DEFAULT_ROUNDS)
    parser.add_argument("--requests", type=int, default=passthrough.DEFAULT_REQUESTS)
    parser.add_argument("--no-passthrough", action="store_true")
    parser.add_argument("--no-refused", action="store_true")
    parser.add_argument("--no-downloads", action="store_true")
    parser.add_argument("--no-resumable", action="store_true")
    parser.add_argument("--no-slow-bodies", action="store_true")
    args = parser.parse_args(argv)
    if min(args.repeat, args.rounds, args.requests) < 1:
        parser.error("--repeat, --rounds and --requests must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    info = machine_info()
    print_environment(info)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    through = None
    refused: list[dict] = []
    downloads: list[dict] = []
    resumable: list[dict] = []
    slow: list[dict] = []
    try:
        uploads = run_uploads(args, workdir / "uploads")
        if not args.no_refused:
            refused = run_refused_bodies(workdir / "refused")
        if not args.no_downloads:
            downloads = run_downloads(workdir / "downloads")
        if not args.no_resumable:
            resumable = run_resumable(workdir / "resumable")
        if not args.no_slow_bodies:
            slow = run_slow_bodies(workdir / "slow-bodies")
        if not args.no_passthrough:
            (workdir / "passthrough").mkdir()
            through = passthrough.run_passthrough(
                workdir / "passthrough", args.rounds, args.requests
            )
    except (BenchmarkError, passthrough.BenchmarkError) as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted: servers stopped, temporary files removed.", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    print()
    print_uploads(uploads)
    targets = upload_targets(uploads)
    if through:
        print_passthrough(through)
        targets += passthrough_targets(through)
    if downloads:
        print_downloads(downloads)
        checked = downloads[0]
        targets.append(growth_target("512 MiB permission-checked download", checked["grew_mib"]))
    if resumable:
        print_resumable(resumable)
        targets += [
            growth_target(f"{row['server']} {row['upload']}", row["grew_mib"])
            for row in resumable
            if row["upload"] != "multipart"
        ]
    if refused:
        print_refused_bodies(refused)
        targets += [
            growth_target(f"refused {row['request']}", row["grew_mib"])
            for row in refused
            if row["server"] == "wrapped"
        ]
    if slow:
        print_slow_bodies(slow)
    print_targets(targets)
    print(f"Total time: {seconds / 60:.1f} min")
    write_json(
        "bench",
        {
            "environment": info,
            "command": "make bench",
            "uploads": [result.summary() for result in uploads],
            "passthrough": through,
            "refused_bodies": refused,
            "downloads": downloads,
            "resumable": resumable,
            "slow_bodies": slow,
            "targets": targets,
            "total_seconds": round(seconds, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
