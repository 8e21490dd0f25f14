"""A cheap HTTP load client: many small requests, one after another or from N processes.

The client shares the machine's two cores with the server it measures, so it does as
little as it can: each request is built once as bytes, sent on a fresh connection (the
sync gunicorn worker closes every connection after its answer, ``Connection: close`` says
so anyway) and read until the server closes it. Every answer is still checked: complete
(its Content-Length arrived) and of the expected status, since a 401 or a 404 would look
fast.

Concurrent clients are processes, not threads, so that they do not queue for one GIL:
a pool of them is forked once (cheap: no re-import), then each batch hands every process
its share.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass

RECV_SIZE = 65536


class LoadError(Exception):
    """An answer that makes the batch's numbers meaningless."""


@dataclass(frozen=True)
class Target:
    """Where to send one kind of request, and the bytes of that request."""

    host: str
    port: int
    request: bytes
    expected_status: int = 200

    @property
    def label(self) -> str:
        return self.request.split(b"\r\n", 1)[0].decode()


def build_request(
    method: str, path: str, host: str, port: int, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def fetch(target: Target) -> tuple[int, bytes]:
    """Send the request on a new connection; (status, body) once the server has closed it."""
    chunks = []
    with socket.create_connection((target.host, target.port), timeout=30) as sock:
        sock.sendall(target.request)
        while data := sock.recv(RECV_SIZE):
            chunks.append(data)
    response = b"".join(chunks)
    head, separator, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if not separator or not status_line.startswith(b"HTTP/1."):
        raise LoadError(f"{target.label}: no complete HTTP head in {response[:200]!r}")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and int(value) != len(body):
            raise LoadError(f"{target.label}: {len(body)} of {int(value)} body bytes arrived")
    return int(status_line.split()[1]), body


def check(target: Target) -> bytes:
    """One request whose status must be the expected one; its body."""
    status, body = fetch(target)
    if status != target.expected_status:
        raise LoadError(
            f"{target.label}: {status} (expected {target.expected_status}) {body[:300]!r}"
        )
    return body


def run_batch(target: Target, count: int) -> tuple[float, float]:
    """``count`` requests one after another, each checked; when they started and ended
    (``time.perf_counter``: the system's monotonic clock, the same in every process)."""
    started = time.perf_counter()
    for _ in range(count):
        check(target)
    return started, time.perf_counter()


def run_alternating(targets: list[Target], count: int) -> list[float]:
    """``count`` requests to each target, one client taking turns request by request
    (first, second, first, ...); the wall-clock seconds spent on each target's requests."""
    spent = [0.0] * len(targets)
    for _ in range(count):
        for index, target in enumerate(targets):
            started = time.perf_counter()
            check(target)
            spent[index] += time.perf_counter() - started
    return spent


def _client_signals() -> None:
    """Ctrl-C is the parent's to handle: it stops the servers and the pool itself, the
    pool with SIGTERM, which must kill a client outright whatever handler it inherited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class ClientPool:
    """``clients`` processes that send a batch together, each its share of the requests."""

    def __init__(self, clients: int):
        self.clients = clients
        self._pool = multiprocessing.get_context("fork").Pool(clients, _client_signals)

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def run_batch(self, target: Target, count: int) -> tuple[int, float]:
        """About ``count`` requests, ``count // clients`` from each client at once.

        The requests actually sent (a multiple of ``clients``) and the wall-clock seconds
        from the first client's start to the last one's end, as the clients saw them: the
        pool's own messages around the batch are left out.
        """
        share = max(1, count // self.clients)
        spans = self._pool.starmap(run_batch, [(target, share)] * self.clients, chunksize=1)
        seconds = max(end for _, end in spans) - min(start for start, _ in spans)
        return share * self.clients, seconds
