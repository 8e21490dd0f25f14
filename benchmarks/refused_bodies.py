"""Memory a refused record write costs: an anonymous 100 MiB ``PUT`` and ``PATCH`` of a
record, against bare Kinto and Kinto wrapped by the middleware (``passthrough_app``), each
under one gunicorn worker. Kinto refuses them (401); the question is what the server held
meanwhile. The middleware refuses a body over ``max_request_body_bytes`` (413) by its
length, and asks Kinto before reading a large one below it (``writes.verdict_first``), so
its growth should be Kinto's: none.

Also an anonymous 100 MiB ``POST /v1/batch``: bare Kinto reads it whole before it answers;
the middleware refuses it (413) by its Content-Length, above
``kinto.attachment.max_request_body_bytes``, before reading a byte.

Usage: ``.venv/bin/python benchmarks/refused_bodies.py [--mib 100] [--batch-only]``
(``make bench-batch-body``: the batch row alone); ``make bench`` runs it too.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import time
from pathlib import Path

from procstat import MemorySampler, process_tree, rss_kib
from report import print_rows
from servers import (
    BENCHMARKS_DIR,
    HOST,
    BenchmarkError,
    start_server,
    stop_server,
    wait_until_ready,
    write_ini,
)

MiB = 1024 * 1024
RECORD = "/v1/buckets/b/collections/c/records/r"


BATCH = "/v1/batch"


def refused_write(base_url: str, method: str, size: int, path: str = RECORD) -> tuple[int, int]:
    """Send an anonymous ``method`` of ``size`` bytes, stopping as soon as the server
    answers; the status and how many body bytes went out."""
    port = int(base_url.rsplit(":", 1)[1])
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    block = b'{"data": {"attachment": "' + b"x" * (MiB - 26)
    sent = 0
    with socket.create_connection((HOST, port), timeout=120) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        while b"\r\n" not in answer:
            try:
                answer += sock.recv(4096)
                continue
            except BlockingIOError:
                pass
            if sent < size:
                try:
                    sent += sock.send(block[: min(len(block), size - sent)])
                except BlockingIOError:
                    time.sleep(0.001)
                except (BrokenPipeError, ConnectionResetError):
                    sock.setblocking(True)
            else:
                time.sleep(0.001)
    return int(answer.split(b" ", 2)[1]), sent


def measure(name: str, workdir: Path, size: int, batch_only: bool = False) -> list[dict]:
    folder = workdir / name
    storage = folder / "attachments"
    storage.mkdir(parents=True)
    ini = write_ini(folder, f"kinto.attachment.base_path = {storage}")
    server = start_server(
        name,
        f"passthrough_app:{name}",
        folder,
        {"KINTO_INI": str(ini)},
        "--pythonpath",
        str(BENCHMARKS_DIR),
    )
    rows = []
    try:
        wait_until_ready(server)
        pids = process_tree(server.pid)
        requests = [("POST", BATCH)] if batch_only else [("PUT", RECORD), ("PATCH", RECORD)]
        if not batch_only:
            requests.append(("POST", BATCH))
        for method, path in requests:
            refused_write(server.base_url, method, MiB, path)  # warm-up
            before = rss_kib(pids)
            with MemorySampler(pids) as sampler:
                status, sent = refused_write(server.base_url, method, size, path)
            what = "batch of" if path == BATCH else method
            rows.append(
                {
                    "server": name,
                    "request": f"anonymous {what} {size // MiB} MiB",
                    "status": status,
                    "body_sent_mib": round(sent / MiB, 1),
                    "grew_mib": round(max(0, sampler.peak_kib - before) / 1024, 1),
                }
            )
    finally:
        stop_server(server)
    return rows


def run_refused_bodies(
    workdir: Path, size: int = 100 * MiB, batch_only: bool = False
) -> list[dict]:
    rows = []
    for name in ("bare", "wrapped"):
        rows += measure(name, workdir, size, batch_only)
    for row in rows:
        batch = row["request"].startswith("anonymous batch")
        if batch and row["server"] == "bare":
            continue  # Kinto reads it whole, then refuses it in its own way
        # Over max_request_body_bytes, the middleware refuses by the length alone.
        expected = 413 if row["server"] == "wrapped" else 401
        if row["status"] != expected:
            raise BenchmarkError(
                f"{row['server']} answered {row['status']} to {row['request']}, not {expected}"
            )
    return rows


def print_refused_bodies(rows: list[dict]) -> None:
    print_rows(
        "Refused record writes and batches (one sync worker; body sent before the answer, growth):",
        [
            ("server", "server", "8"),
            ("request", "request", "31"),
            ("status", "status", ">6"),
            ("body_sent_mib", "sent MiB", ">8"),
            ("grew_mib", "+MiB", ">6"),
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--batch-only", action="store_true", help="only the batch rows")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-refused-"))
    try:
        print_refused_bodies(run_refused_bodies(workdir, args.mib * MiB, args.batch_only))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
