"""A permission-checked download (``GET .../records/{rid}/attachment``) through the
middleware on local storage, against nginx serving the same file straight from the
storage folder: throughput, and how much each server's memory grows while it sends.

The middleware asks Kinto whether the caller may read the record, then streams the file in
256 KiB blocks from one sync gunicorn worker; nginx (Debian's, as the production example
runs it) sends it with ``sendfile``. What the check costs is the difference.

Usage: ``.venv/bin/python benchmarks/downloads.py [--mib 512] [--repeat 3]``; ``make bench``
runs it too.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from client import AUTH, BUCKET, COLLECTION, create_collection, make_payload, upload
from procstat import MemorySampler, process_tree, rss_kib
from report import RATE_AND_GROWTH, print_rows
from servers import (
    BENCHMARKS_DIR,
    HOST,
    BenchmarkError,
    free_port,
    start_middleware,
    stop_server,
    wait_until_ready,
)

sys.path.insert(0, str(BENCHMARKS_DIR.parent / "examples" / "production"))
from local_stack import nginx_command, nginx_conf  # noqa: E402

MiB = 1024 * 1024


def timed_download(url: str, pids: list[int], auth=None) -> tuple[float, float, str]:
    """MiB/s, the server's memory growth (MiB) and the SHA-256 of one download."""
    digest, size = hashlib.sha256(), 0
    before = rss_kib(pids)
    with MemorySampler(pids) as sampler:
        started = time.perf_counter()
        with requests.get(url, auth=auth, stream=True, timeout=600) as answer:
            if answer.status_code != 200:
                raise BenchmarkError(f"GET {url}: {answer.status_code}")
            for block in answer.iter_content(MiB):
                digest.update(block)
                size += len(block)
        seconds = time.perf_counter() - started
    return size / MiB / seconds, max(0, sampler.peak_kib - before) / 1024, digest.hexdigest()


def start_nginx(workdir: Path, root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    site = f"server {{ listen {HOST}:{port}; location / {{ root {root}; sendfile on; }} }}"
    conf = nginx_conf(workdir / "nginx", site)
    process = subprocess.Popen(
        nginx_command(conf), stdin=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://{HOST}:{port}"
    for _ in range(100):
        try:
            requests.get(url, timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise BenchmarkError("nginx did not start")


def run_downloads(workdir: Path, size_mib: int = 512, repeat: int = 3) -> list[dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    payload = make_payload(workdir / "download.bin", size_mib * MiB)
    server = start_middleware(workdir)
    nginx = None
    try:
        wait_until_ready(server)
        with requests.Session() as session:
            session.auth = AUTH
            create_collection(session, server.base_url)
            stored = upload(session, server.base_url, "download", payload)
        payload.path.unlink()
        root = workdir / "middleware" / "attachments"
        nginx, nginx_url = start_nginx(workdir, root)
        record = f"/v1/buckets/{BUCKET}/collections/{COLLECTION}/records/download"
        targets = {
            "mw (checked)": (
                f"{server.base_url}{record}/attachment",
                process_tree(server.pid),
                AUTH,
            ),
            "nginx (file)": (f"{nginx_url}/{stored['location']}", process_tree(nginx.pid), None),
        }
        rows = []
        runs = {name: [] for name in targets}
        for _ in range(repeat):
            for name, (url, pids, auth) in targets.items():
                speed, growth, digest = timed_download(url, pids, auth)
                if digest != payload.sha256:
                    raise BenchmarkError(f"{name} sent other bytes")
                runs[name].append((speed, growth))
        for name, measured in runs.items():
            rows.append(
                {
                    "server": name,
                    "mib": size_mib,
                    "mib_per_s": round(statistics.median(s for s, _ in measured), 1),
                    "grew_mib": round(max(g for _, g in measured), 1),
                }
            )
        return rows
    finally:
        stop_server(server)
        if nginx is not None:
            nginx.terminate()
            nginx.wait(15)


def print_downloads(rows: list[dict]) -> None:
    print_rows(
        "Downloads (median MiB/s over the rounds, largest memory growth):",
        [("server", "server", "14"), ("mib", "MiB", ">5")] + RATE_AND_GROWTH,
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-downloads-"))
    try:
        print_downloads(run_downloads(workdir, args.mib, args.repeat))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
