"""Anonymous clients that send a request's head at once and then its body one byte every
few seconds, to ``POST /v1/batch`` and to record ``PUT``s (bodies the middleware or Kinto
read whole), and ``GET /v1/`` timed meanwhile: what a server with a pool of threads
must survive. Used by the end-to-end tests and by ``benchmarks/slow_bodies.py``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import requests

HOST = "127.0.0.1"
#: What each slow client announces; it never sends more than a few bytes of it.
ANNOUNCED = 100_000


def slow_upload_head(index: int, port: int, authorization: str) -> bytes:
    """A multipart upload to a record's attachment by a caller who may write there: the
    middleware reads its body itself, as it arrives."""
    return (
        f"POST /v1/buckets/b/collections/c/records/slow{index}/attachment HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\nAuthorization: {authorization}\r\n"
        "Content-Type: multipart/form-data; boundary=slow\r\n"
        f"Content-Length: {ANNOUNCED}\r\n\r\n--slow\r\n"
    ).encode()


def slow_head(index: int, port: int) -> bytes:
    """Every other client on the batch endpoint, the others on a record (a body under
    1 MiB, which the middleware reads without asking Kinto first)."""
    target = (
        "POST /v1/batch"
        if index % 2 == 0
        else f"PUT /v1/buckets/b/collections/c/records/slow{index}"
    )
    return (
        f"{target} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {ANNOUNCED}\r\n\r\n{{"
    ).encode()


class SlowBodies:
    """``count`` connections to ``port`` trickling their bodies (a byte every
    ``interval`` seconds) from entering the ``with`` block to leaving it."""

    def __init__(
        self,
        port: int,
        count: int,
        interval: float = 3.0,
        head: Callable[[int, int], bytes] = slow_head,
    ):
        self.port = port
        self.head = head
        self.count = count
        self.interval = interval
        self.sockets: list[socket.socket] = []
        self.connected_at = 0.0
        self._stop = threading.Event()
        self._sender = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> SlowBodies:
        for index in range(self.count):
            sock = socket.create_connection((HOST, self.port), timeout=10)
            sock.sendall(self.head(index, self.port))
            self.sockets.append(sock)
        self.connected_at = time.monotonic()
        self._sender.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._sender.join()
        for sock in self.sockets:
            sock.close()

    def _trickle(self) -> None:
        alive = list(self.sockets)
        while alive and not self._stop.wait(self.interval):
            for sock in list(alive):
                try:
                    sock.sendall(b" ")
                except OSError:  # cut by the server: this client is done
                    alive.remove(sock)

    def statuses(self) -> list[int | None]:
        """The status each connection was answered with so far (``None``: no answer)."""
        found = []
        for sock in self.sockets:
            try:
                sock.setblocking(False)
                head = sock.recv(65536)
            except (BlockingIOError, ConnectionResetError):
                head = b""
            finally:
                sock.setblocking(True)
            found.append(int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None)
        return found


def timed_gets(url: str, start: float, end: float, timeout: float = 10.0) -> list[float]:
    """``GET url/v1/`` one after the other from monotonic time ``start`` to ``end``: how
    long each took (``timeout`` for one that got no answer in time)."""
    time.sleep(max(0.0, start - time.monotonic()))
    durations = []
    while not durations or time.monotonic() < end:
        began = time.monotonic()
        try:
            requests.get(f"{url}/v1/", timeout=timeout).raise_for_status()
            durations.append(time.monotonic() - began)
        except requests.Timeout:
            durations.append(timeout)
        time.sleep(0.2)
    return durations
