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
import io
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2

from procstat import MemorySampler, _status_field, cpu_times, process_tree, rss_kib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.postgres: the tests' throw-away cluster, reused

from tests.postgres import (  # noqa: E402
    PostgresCluster,
    kinto_postgresql_settings,
    write_kinto_ini,
)

COMMAND = str(Path(sys.executable).with_name("kinto-attachment-mw"))
RESULTS = REPO / "benchmarks" / "results" / "gc_scale.json"
BASE_URL = "https://files.example/attachments/"
BUCKETS = 2
#: Record ``i`` of a collection: attached unless ``i % 10 == 0`` (90%); of those, the
#: attachment is null when ``i % 20 == 0``. An attached record is dangling when
#: ``i % 1000 == DANGLING_AT``; an orphan file is stored next to record ``i`` when
#: ``i % 100 == ORPHAN_AT``.
DANGLING_AT = 7
ORPHAN_AT = 50
ORPHAN_AGE_S = 2 * 86400  # well past the default grace of 1h
COPY_BATCH = 50_000
CPU_SAMPLE_INTERVAL_S = 0.25
TIMELINE_STEP_S = 0.5
FILE_BYTES = b"x" * 16  # tiny: the gc reads no content, only names, sizes and ages
EPOCH = datetime(2024, 1, 1)


@dataclass
class Planted:
    records: int = 0  # objects of resource ``record``
    attached: int = 0  # records with an attachment object (dangling ones included)
    null_attachments: int = 0
    files: int = 0  # stored files (orphans included), each with its sidecar
    orphan_keys: set[str] = field(default_factory=set)
    dangling_uris: set[str] = field(default_factory=set)


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


def collection_ids(count: int) -> list[tuple[str, str]]:
    """``(bucket, collection)`` pairs, collections dealt round-robin over the buckets."""
    return [(f"bucket{n % BUCKETS}", f"collection{n}") for n in range(count)]


def timestamp(milliseconds: int) -> str:
    return (EPOCH + timedelta(milliseconds=milliseconds)).isoformat(" ", "milliseconds")


def copy_rows(cursor, rows: list[str]) -> None:
    cursor.copy_expert(
        "COPY objects (id, parent_id, resource_name, last_modified, data, deleted) FROM STDIN",
        io.StringIO("".join(rows)),
    )


def row(object_id: str, parent_id: str, resource: str, millis: int, data: dict) -> str:
    text = json.dumps(data, separators=(",", ":"))
    assert "\\" not in text and "\t" not in text  # nothing to escape for COPY's text format
    return f"{object_id}\t{parent_id}\t{resource}\t{timestamp(millis)}\t{text}\tf\n"


class Tree:
    """Stored files and sidecars under ``root``, in folders of ``per_folder`` files per
    collection (all in the collection's folder when ``per_folder`` is 0)."""

    def __init__(self, root: Path, per_folder: int, now: float):
        self.root = root
        self.per_folder = per_folder
        self.old = now - ORPHAN_AGE_S
        self.made: set[str] = set()

    def key(self, bucket: str, collection: str, number: int, name: str) -> str:
        folder = f"{bucket}/{collection}"
        if self.per_folder:
            folder += f"/{number // self.per_folder:05d}"
        return f"{folder}/{name}"

    def store(self, key: str, record_uri: str, old: bool = False) -> None:
        folder, name = key.rsplit("/", 1)
        path = self.root / folder
        if folder not in self.made:
            path.mkdir(parents=True, exist_ok=True)
            self.made.add(folder)
        data_path = f"{path}/{name}"
        meta_path = f"{path}/.{name}.meta"
        meta = {"record": record_uri, "hash": "0" * 64, "size": len(FILE_BYTES)}
        for target, content in ((data_path, FILE_BYTES), (meta_path, json.dumps(meta).encode())):
            handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(handle, content)
            finally:
                os.close(handle)
        if old:
            os.utime(data_path, (self.old, self.old))
            os.utime(meta_path, (self.old, self.old))


def plant(url: str, tree: Tree, records: int, collections: int, seed: int) -> tuple[Planted, dict]:
    """COPY ``records`` records into Kinto's tables and store their files; what was planted."""
    rng = random.Random(seed)
    planted = Planted()
    pairs = collection_ids(collections)
    timings = {"copy_s": 0.0, "files_s": 0.0}
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            # Kinto's trigger would look up the previous timestamp row by row: the rows
            # carry unique timestamps already, so skip it for the load.
            cursor.execute("SET session_replication_role = replica")
            buckets = sorted({bucket for bucket, _ in pairs})
            parents = [row(b, "", "bucket", n, {}) for n, b in enumerate(buckets)]
            parents += [
                row(c, f"/buckets/{b}", "collection", n, {}) for n, (b, c) in enumerate(pairs)
            ]
            copy_rows(cursor, parents)
            batch: list[str] = []
            for position, (bucket, collection) in enumerate(pairs):
                parent = f"/buckets/{bucket}/collections/{collection}"
                count = records // collections + (position < records % collections)
                stored = 0  # files in this collection, for their folder
                for i in range(count):
                    record_id = _uuid(rng)
                    uri = f"{parent}/records/{record_id}"
                    data: dict = {"title": f"record {i}"}
                    if i % 10:
                        key = tree.key(bucket, collection, stored, f"{_uuid(rng)}.bin")
                        data["attachment"] = {
                            "filename": "file.bin",
                            "hash": "0" * 64,
                            "location": BASE_URL + key,
                            "mimetype": "application/octet-stream",
                            "size": len(FILE_BYTES),
                        }
                        planted.attached += 1
                        if i % 1000 == DANGLING_AT:
                            planted.dangling_uris.add(uri)
                        else:
                            started = time.perf_counter()
                            tree.store(key, uri)
                            timings["files_s"] += time.perf_counter() - started
                            stored += 1
                    elif i % 20 == 0:
                        data["attachment"] = None
                        planted.null_attachments += 1
                    if i % 100 == ORPHAN_AT:
                        key = tree.key(bucket, collection, stored, f"{_uuid(rng)}.bin")
                        started = time.perf_counter()
                        tree.store(key, f"{parent}/records/{_uuid(rng)}", old=True)
                        timings["files_s"] += time.perf_counter() - started
                        planted.orphan_keys.add(key)
                        stored += 1
                    batch.append(row(record_id, parent, "record", i, data))
                    planted.records += 1
                    if len(batch) >= COPY_BATCH:
                        started = time.perf_counter()
                        copy_rows(cursor, batch)
                        timings["copy_s"] += time.perf_counter() - started
                        batch.clear()
            started = time.perf_counter()
            copy_rows(cursor, batch)
            cursor.execute("SET session_replication_role = DEFAULT")
            timings["copy_s"] += time.perf_counter() - started
        planted.files = planted.attached - len(planted.dangling_uris) + len(planted.orphan_keys)
        started = time.perf_counter()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE objects")  # statistics, as a live database has
        timings["analyze_s"] = time.perf_counter() - started
    finally:
        connection.close()
    return planted, timings


def _uuid(rng: random.Random) -> str:
    value = f"{rng.getrandbits(128):032x}"
    return f"{value[:8]}-{value[8:12]}-4{value[13:16]}-a{value[17:20]}-{value[20:]}"


class MemoryTimeline(MemorySampler):
    """:class:`MemorySampler` that also keeps the kernel's high-water mark (VmHWM) as last
    read, and RSS over time (one point per ``TIMELINE_STEP_S``), to see when the peak is."""

    def __init__(self, pid: int):
        super().__init__([pid])
        self.pid = pid
        self.started = time.perf_counter()
        self.hwm_kib = 0
        self.timeline: list[tuple[float, float]] = []

    def _run(self) -> None:
        while True:
            rss = rss_kib(self.pids)
            self.peak_kib = max(self.peak_kib, rss)
            self.hwm_kib = max(self.hwm_kib, _status_field(self.pid, "VmHWM") or 0)
            self.samples += 1
            elapsed = time.perf_counter() - self.started
            if not self.timeline or elapsed - self.timeline[-1][0] >= TIMELINE_STEP_S:
                self.timeline.append((round(elapsed, 2), round(rss / 1024, 1)))
            if self._stop.wait(self.interval_s):
                break


class CpuSampler:
    """Summed CPU seconds of a process tree (the PostgreSQL cluster), sampled while the gc
    runs: the last value seen of each process, so a backend's final fraction of a sample
    interval is missed."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self.start = self._now()
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _now(self) -> dict[int, float]:
        return {pid: sum(cpu_times([pid])) for pid in process_tree(self.root_pid)}

    def _run(self) -> None:
        while True:
            self.seen.update(self._now())
            if self._stop.wait(CPU_SAMPLE_INTERVAL_S):
                return

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.seen.items())


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
