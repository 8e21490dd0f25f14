"""What the gc scale benchmark plants: records COPYed straight into Kinto's PostgreSQL
tables, and their files with sidecars as ``LocalStorage`` writes them, orphans and
dangling records included, so that what gc must find is known exactly."""

from __future__ import annotations

import io
import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2

from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import StoredFileMetadata

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
        owner = RecordPath.parse(record_uri)
        meta = StoredFileMetadata(owner, hash="0" * 64, size=len(FILE_BYTES)).to_dict()
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
