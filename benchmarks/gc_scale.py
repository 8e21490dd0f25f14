"""Garbage collection at scale: ``kinto-attachment-mw gc --dry-run`` over a million records.

``collect_garbage`` promises bounded memory whatever the number of records and files (both
sides are streamed into a temporary SQLite database). This checks it on a real deployment
shape, twice: at N/10 and at N records, printing both rows side by side.

For each run, on a throw-away PostgreSQL cluster (``tests/postgres.py``, as the tests start
it), a fresh database gets Kinto's schema (``kinto migrate``), then N records spread over a
few buckets and collections are bulk-loaded with COPY straight into Kinto's ``objects``
table. 90% of them have an ``attachment`` whose location points at a file on local storage;
of the others, half have ``"attachment": null`` (what plain-JSON removals store) and half
no such key. Each referenced file is created with its ``.NAME.meta`` sidecar, as
``LocalStorage`` writes them, in folders of ``--files-per-folder`` files. Planted on top:
orphans (1 file per 100 records, old, that no record references) and dangling records
(1 attached record in 1000 whose file, sidecar included, is missing).

The real command then runs in its own process, as an operator's cron job would; its RSS
and the kernel's high-water mark (VmHWM) are sampled from /proc while it runs (not
``ru_maxrss``: with vfork, exec folds the benchmark's own RSS into it), and the PostgreSQL
backends' CPU is sampled too, to tell where the time goes. The
counts it prints, and the orphans and dangling records it lists, must be exactly the
planted ones: the script exits with status 1 when they are not.

Where the files go matters (``--workdir``): on the machine this was written on, creating a
file on the ext4 disk cost from 20 µs to 0.5 ms of kernel CPU, varying from one folder and
one minute to the next, which made planting a million files take from one to twenty
minutes; on tmpfs (/dev/shm) it is a steady 6 µs. ``make bench-gc`` uses /dev/shm: at a
million records, about 8 GiB of RAM hold the files, their sidecars and their inodes. The
gc's own SQLite file goes wherever ``TMPDIR`` says, as in production.

Needs root (PostgreSQL runs as the ``postgres`` user) and Debian's PostgreSQL binaries.
Results are written to benchmarks/results/gc_scale.json.

Usage: ``.venv/bin/python benchmarks/gc_scale.py [--records 1000000] [--collections 10]
[--files-per-folder 1000] [--workdir /var/tmp] [--only-full]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gc_plant import BASE_URL, Planted, Tree, plant
from procstat import CpuSampler, MemoryTimeline

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.helpers.postgres: the tests' throw-away cluster, reused

from tests.helpers.postgres import (  # noqa: E402
    PostgresCluster,
    kinto_postgresql_settings,
    write_kinto_ini,
)

COMMAND = str(Path(sys.executable).with_name("kinto-attachment-mw"))
RESULTS = REPO / "benchmarks" / "results" / "gc_scale.json"


@dataclass
class Row:
    records: int
    records_with_attachment: int
    files: int
    orphans: int
    dangling: int
    found: dict[str, int]
    ok: bool
    problems: list[str]
    gc_seconds: float
    gc_cpu_s: float
    gc_user_s: float
    postgres_cpu_s: float
    peak_rss_mib: float
    rss_samples: int
    peak_hwm_mib: float  # the kernel's high-water mark (VmHWM), as last read before the exit
    rss_timeline: list[tuple[float, float]]  # (seconds, RSS MiB)
    setup: dict[str, float]


def run_gc(ini: Path, output: Path, postmaster: int) -> dict:
    """The real command in its own process; its stdout goes to ``output``."""
    with open(output, "w") as stdout:
        started = time.perf_counter()
        process = subprocess.Popen(
            [COMMAND, "gc", "--ini", str(ini), "--dry-run"],
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )
        with MemoryTimeline(process.pid) as memory, CpuSampler(postmaster) as database:
            _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": process.returncode,
        "seconds": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "user_s": usage.ru_utime,
        "postgres_cpu_s": database.seconds,
        "peak_rss_mib": memory.peak_kib / 1024,
        "samples": memory.samples,
        "hwm_mib": memory.hwm_kib / 1024,
        "timeline": memory.timeline,
    }


SUMMARY = {
    "records": r"Records with an attachment: (\d+) \((\d+) outside",
    "files": r"Stored files: (\d+)",
    "orphans": r"Orphan files: (\d+)",
    "kept": r"Unreferenced files that keep_old_files keeps: (\d+)",
    "leftovers": r"Leftovers of unfinished uploads: (\d+)",
    "dangling": r"Dangling records \(location without a file\): (\d+)",
}


def check(output: str, planted: Planted, returncode: int) -> tuple[dict[str, int], list[str]]:
    """What the command found, and how it differs from what was planted."""
    found = {}
    for name, pattern in SUMMARY.items():
        match = re.search(pattern, output)
        found[name] = int(match[1]) if match else -1
        if name == "records" and match:
            found["outside"] = int(match[2])
    listed_orphans = set(re.findall(r"^orphan: (\S+) \(", output, re.MULTILINE))
    listed_dangling = set(re.findall(r"^dangling: (\S+) -> ", output, re.MULTILINE))
    expected = {
        "records": planted.attached,
        "outside": 0,
        "files": planted.files,
        "orphans": len(planted.orphan_keys),
        "kept": 0,
        "leftovers": 0,
        "dangling": len(planted.dangling_uris),
    }
    problems = [
        f"{name}: found {found.get(name)}, planted {value}"
        for name, value in expected.items()
        if found.get(name) != value
    ]
    if listed_orphans != planted.orphan_keys:
        problems.append(f"listed orphans differ from the planted ones ({len(listed_orphans)})")
    if listed_dangling != planted.dangling_uris:
        problems.append(f"listed dangling records differ ({len(listed_dangling)})")
    if returncode != 0:
        problems.append(f"exit status {returncode}")
    return found, problems


def bench(cluster: PostgresCluster, records: int, args) -> Row:
    folder = Path(tempfile.mkdtemp(prefix="kinto-attachment-gc-scale-", dir=args.workdir))
    try:
        started = time.perf_counter()
        url = cluster.create_database(folder)
        migrate_s = time.perf_counter() - started
        ini = write_kinto_ini(folder, kinto_postgresql_settings(url), BASE_URL)
        tree = Tree(folder / "attachments", args.files_per_folder, time.time())
        print(f"[{records}] planting records and files...", flush=True)
        started = time.perf_counter()
        planted, setup = plant(url, tree, records, args.collections, seed=records)
        setup.update(migrate_s=migrate_s, plant_s=time.perf_counter() - started)
        print(f"[{records}] running gc --dry-run...", flush=True)
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        measured = run_gc(ini, folder / "gc.out", postmaster)
        output = (folder / "gc.out").read_text()
        found, problems = check(output, planted, measured["returncode"])
        if problems:
            print(output[-2000:], file=sys.stderr)
        started = time.perf_counter()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    setup["cleanup_s"] = time.perf_counter() - started
    return Row(
        records=planted.records,
        records_with_attachment=planted.attached,
        files=planted.files,
        orphans=len(planted.orphan_keys),
        dangling=len(planted.dangling_uris),
        found=found,
        ok=not problems,
        problems=problems,
        gc_seconds=measured["seconds"],
        gc_cpu_s=measured["cpu_s"],
        gc_user_s=measured["user_s"],
        postgres_cpu_s=measured["postgres_cpu_s"],
        peak_rss_mib=measured["peak_rss_mib"],
        rss_samples=measured["samples"],
        peak_hwm_mib=measured["hwm_mib"],
        rss_timeline=measured["timeline"],
        setup={name: round(value, 2) for name, value in setup.items()},
    )


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'records':>9} {'attached':>9} {'files':>9} {'orphans':>8} {'dangling':>8}"
        f" {'check':>5} {'wall s':>7} {'gc CPU s':>8} {'pg CPU s':>8} {'peak RSS MiB':>12}"
        f" {'HWM MiB':>8}"
    )
    print(header)
    for r in rows:
        print(
            f"{r.records:>9} {r.found['records']:>9} {r.found['files']:>9}"
            f" {r.found['orphans']:>8} {r.found['dangling']:>8} {'ok' if r.ok else 'FAIL':>5}"
            f" {r.gc_seconds:>7.1f} {r.gc_cpu_s:>8.1f} {r.postgres_cpu_s:>8.1f}"
            f" {r.peak_rss_mib:>12.1f} {r.peak_hwm_mib:>8.1f}"
        )
    for r in rows:
        setup = ", ".join(f"{name} {value}" for name, value in r.setup.items())
        print(f"[{r.records}] setup: {setup}")
        for problem in r.problems:
            print(f"[{r.records}] MISMATCH: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--collections", type=int, default=10)
    parser.add_argument(
        "--files-per-folder",
        type=int,
        default=1000,
        help="files per folder inside a collection's folder (0: all in the collection's)",
    )
    parser.add_argument(
        "--workdir",
        default=tempfile.gettempdir(),
        help="where the stored files, the ini and the command's output go (default: %(default)s)",
    )
    parser.add_argument("--only-full", action="store_true", help="skip the N/10 run")
    args = parser.parse_args()
    if args.records < 1000 or args.collections < 1:
        parser.error("--records must be at least 1000, --collections at least 1")
    sizes = [args.records] if args.only_full else [args.records // 10, args.records]

    cluster = PostgresCluster()
    rows = []
    try:
        cluster.start()
        for records in sizes:
            rows.append(bench(cluster, records, args))
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
    print_table(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "kinto-attachment-mw gc --dry-run",
                "collections": args.collections,
                "files_per_folder": args.files_per_folder,
                "workdir": args.workdir,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Written to {RESULTS.relative_to(REPO)}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
