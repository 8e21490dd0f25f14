"""Resumable (tus) uploads against multipart ones: a 512 MiB file sent in 8 MiB PATCHes,
to the middleware on local disk and on S3 (moto), one sync gunicorn worker each: MiB/s of
the whole upload (creation to the last PATCH's answer, which stores the file and writes
the record) and the server's peak memory growth.

Usage: ``.venv/bin/python benchmarks/resumable.py [--mib 512] [--patch-mib 8]
[--repeat 3]``; ``make bench`` runs it too.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import requests

from client import AUTH, BUCKET, COLLECTION, create_collection, make_payload, upload
from procstat import MemorySampler, process_tree, rss_kib
from report import RATE_AND_GROWTH, print_rows
from s3_server import create_bucket, start_moto, start_s3_middleware
from servers import BenchmarkError, start_middleware, stop_server, wait_until_ready

MiB = 1024 * 1024


def tus_upload(base_url: str, record_id: str, path: Path, patch_size: int) -> dict:
    url = f"{base_url}/v1/buckets/{BUCKET}/collections/{COLLECTION}/records/{record_id}/attachment"
    size = path.stat().st_size
    tus = {"Tus-Resumable": "1.0.0"}
    created = requests.post(
        url,
        auth=AUTH,
        headers={
            **tus,
            "Upload-Length": str(size),
            "Upload-Metadata": "filename " + base64.b64encode(path.name.encode()).decode(),
        },
        timeout=30,
    )
    if created.status_code != 201:
        raise BenchmarkError(f"tus creation: {created.status_code} {created.text[:300]}")
    location = created.headers["Location"]
    offset = 0
    with open(path, "rb") as source:
        while offset < size:
            piece = source.read(patch_size)
            answer = requests.patch(
                location,
                data=piece,
                auth=AUTH,
                headers={
                    **tus,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset),
                },
                timeout=600,
            )
            if answer.status_code != 204:
                raise BenchmarkError(f"PATCH at {offset}: {answer.status_code} {answer.text[:300]}")
            offset += len(piece)
    record = requests.get(url.rsplit("/", 1)[0], auth=AUTH, timeout=30).json()
    return record["data"]["attachment"]


def measured(server, run) -> tuple[float, float, dict]:
    pids = process_tree(server.pid)
    before = rss_kib(pids)
    with MemorySampler(pids) as sampler:
        started = time.perf_counter()
        answer = run()
        seconds = time.perf_counter() - started
    return seconds, max(0, sampler.peak_kib - before) / 1024, answer


def run_resumable(workdir: Path, size_mib: int = 512, patch_mib: int = 8, repeat: int = 3):
    workdir.mkdir(parents=True, exist_ok=True)
    payload = make_payload(workdir / "resumable.bin", size_mib * MiB)
    moto = None
    servers = []
    try:
        servers.append(start_middleware(workdir))
        moto, moto_url = start_moto(workdir)
        create_bucket(moto_url)
        servers.append(start_s3_middleware(workdir, moto_url))
        rows = []
        for server in servers:
            wait_until_ready(server)
            with requests.Session() as session:
                session.auth = AUTH
                create_collection(session, server.base_url)
                runs = {"multipart": [], "tus": []}
                for round_number in range(repeat):
                    record = f"r{round_number}"
                    seconds, growth, answer = measured(
                        server,
                        lambda r=record, u=server.base_url: upload(session, u, r, payload),
                    )
                    runs["multipart"].append((size_mib / seconds, growth, answer["hash"]))
                    seconds, growth, answer = measured(
                        server,
                        lambda r=record, u=server.base_url: tus_upload(
                            u, r + "t", payload.path, patch_mib * MiB
                        ),
                    )
                    runs["tus"].append((size_mib / seconds, growth, answer["hash"]))
            for kind, measured_runs in runs.items():
                if any(digest != payload.sha256 for _, _, digest in measured_runs):
                    raise BenchmarkError(f"{server.name} {kind}: the stored file differs")
                rows.append(
                    {
                        "server": server.name,
                        "upload": kind if kind == "multipart" else f"tus, {patch_mib} MiB PATCHes",
                        "mib": size_mib,
                        "mib_per_s": round(statistics.median(s for s, _, _ in measured_runs), 1),
                        "grew_mib": round(max(g for _, g, _ in measured_runs), 1),
                    }
                )
        return rows
    finally:
        for server in servers:
            stop_server(server)
        if moto is not None:
            moto.terminate()
            moto.wait(15)


def print_resumable(rows: list[dict]) -> None:
    columns = [("server", "server", "14"), ("upload", "upload", "22"), ("mib", "MiB", ">5")]
    print_rows(
        "Resumable uploads (median MiB/s, largest memory growth):",
        columns + RATE_AND_GROWTH,
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--patch-mib", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-resumable-"))
    try:
        print_resumable(run_resumable(workdir, args.mib, args.patch_mib, args.repeat))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
