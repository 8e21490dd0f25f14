"""One slow client against the server ``make serve`` runs: the others are served
meanwhile (threaded worker), and when it stops sending, its upload ends with 408 and
nothing of it is kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..helpers.live_server import COLLECTION_PATH
from ..helpers.make_serve import MakeServe, start_make_serve
from ..helpers.raw_http import connect, file_part_head, read_response, upload_head

pytestmark = pytest.mark.integration

AUTH = ("alice", "secret")
IDLE = 3  # seconds: the body time-out given to the server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[MakeServe, Path]]:
    folder = tmp_path_factory.mktemp("slow-clients")
    server = start_make_serve(folder, env={"KINTO_ATTACHMENT_BODY_TIMEOUT_SECONDS": str(IDLE)})
    try:
        yield server, folder / "attachments"
    finally:
        server.stop()


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_a_trickling_upload_blocks_no_one_and_times_out_when_it_stalls(server):
    server, root = server
    url = server.url
    requests.put(f"{url}/v1/buckets/b", json={}, auth=AUTH, timeout=30).raise_for_status()
    requests.put(f"{url}{COLLECTION_PATH}", json={}, auth=AUTH, timeout=30).raise_for_status()
    sock = connect(server)
    sock.sendall(upload_head(server, "slow", 10_000) + file_part_head("slow.txt"))
    trickling = threading.Event()
    stop = threading.Event()

    def trickle():
        trickling.set()
        while not stop.wait(1.0):  # one byte a second, then nothing
            sock.sendall(b"x")

    sender = threading.Thread(target=trickle)
    sender.start()
    trickling.wait(5)
    durations = []
    try:
        for _ in range(50):
            started = time.monotonic()
            answer = requests.get(f"{url}{COLLECTION_PATH}/records", auth=AUTH, timeout=30)
            durations.append(time.monotonic() - started)
            assert answer.status_code == 200
    finally:
        stop.set()
        sender.join()
    assert max(durations) < 2, durations  # served while the upload trickles
    # The client now sends nothing more: past the time-out, a 408 and nothing stored.
    stalled_at = time.monotonic()
    status, _, body = read_response(sock)
    sock.close()
    assert status == 408, body
    assert IDLE - 1.5 < time.monotonic() - stalled_at < IDLE + 10
    assert b"No byte of the request body arrived for 3 seconds" in body
    assert stored_files(root) == []
    requests.get(f"{url}{COLLECTION_PATH}/records/slow", auth=AUTH, timeout=30)
    assert (
        requests.get(f"{url}{COLLECTION_PATH}/records/slow", auth=AUTH, timeout=30).status_code
        == 404
    )


def test_a_stalled_batch_body_times_out(server):
    """The middleware reads a batch's body too (to foresee its deletes)."""
    server, _ = server
    sock = connect(server)
    head = (
        "POST /v1/batch HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"requests": [')
    started = time.monotonic()
    status, _, body = read_response(sock)
    sock.close()
    assert status == 408, body
    assert time.monotonic() - started < IDLE + 10
