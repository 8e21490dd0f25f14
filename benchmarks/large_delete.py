"""Deleting a collection with many attachments: what the middleware adds.

Before Kinto deletes, the middleware lists the attachments beneath (to remove their files
once Kinto confirmed). Up to ``max_removals_per_request`` it keeps them; past it, it stops
listing and leaves the files to gc. This measures that listing (``KintoWrites.foresee``,
the middleware's whole share of the request before Kinto runs) on Kinto's memory backend,
in process: its time and the peak of Python memory it allocates (tracemalloc), for
collections of N records with attachments, with the default limit and with the limit
raised above N (every attachment kept in memory, as before the limit existed).

Records are planted straight into Kinto's storage (no files: the listing is measured, not
the removal). Usage: ``.venv/bin/python benchmarks/large_delete.py [--records 100000 1000000]``
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kinto_attachment_mw import AttachmentMiddleware  # noqa: E402
from kinto_attachment_mw.protocol.paths import Kind, Route  # noqa: E402
from kinto_attachment_mw.writes.patches import PatchStyle  # noqa: E402
from tests.helpers.kinto_apps import ALICE, fresh_kinto, kinto_settings  # noqa: E402

PARENT = "/buckets/b/collections/c"


def deployment(limit: int, tmp: Path):
    settings = kinto_settings(tmp, max_removals_per_request=str(limit))
    middleware = AttachmentMiddleware(fresh_kinto(settings), settings)
    return middleware


def plant(middleware, records: int) -> None:
    storage = middleware.registry.storage
    storage.create("bucket", "", {"id": "b"})
    storage.create("collection", "/buckets/b", {"id": "c"})
    for n in range(records):
        attachment = {"location": f"f/{n}.bin", "hash": "0" * 64, "size": 1, "filename": "x"}
        storage.create("record", PARENT, {"id": f"r{n}", "attachment": attachment})


def caller_environ() -> dict:
    """Alice, made a writer of everything: Kinto's permission backend, set directly."""
    return {
        "REQUEST_METHOD": "DELETE",
        "PATH_INFO": "/v1" + PARENT,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "HTTP_AUTHORIZATION": ALICE["Authorization"],
    }


def measure(records: int, limit: int, tmp: Path) -> tuple[float, float, int]:
    middleware = deployment(limit, tmp)
    plant(middleware, records)
    permission = middleware.registry.permission
    for uri in ("/buckets/b", PARENT):
        permission.add_principal_to_ace(uri, "write", "system.Authenticated")
    route = Route(Kind.COLLECTION, "b", "c")
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    planned = middleware.writes.foresee(
        caller_environ(), "DELETE", route, [], PatchStyle.JSON, None
    )
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept = len(planned.attachments) if planned else 0
    return elapsed, peak / 2**20, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    tmp = Path("/tmp/kinto-attachment-large-delete")
    tmp.mkdir(exist_ok=True)
    print(f"{'records':>9}  {'limit':>9}  {'listing s':>9}  {'peak MiB':>8}  {'kept':>9}")
    for records in args.records:
        for limit in (10_000, records + 1):
            if limit > 100_000 and records > 100_000:
                # Unbounded over 100k: the memory backend's filtered pages cost O(N) each,
                # so listing everything takes hours there; the 100k row shows the trend.
                continue
            elapsed, peak, kept = measure(records, limit, tmp)
            print(f"{records:>9}  {limit:>9}  {elapsed:>9.2f}  {peak:>8.1f}  {kept:>9}")


if __name__ == "__main__":
    main()
