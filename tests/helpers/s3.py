"""A real S3 API for the tests: moto's server on a free local port, and a TCP proxy in
front of it that can stop answering, the way a network or an S3 endpoint fails.

Nothing here mocks boto3: the middleware talks HTTP to these servers exactly as it talks
to Amazon S3.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

from .servers import HOST, free_port

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
#: moto accepts any credentials; these keep boto3 from looking for real ones.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


class MotoServer:
    """``moto_server`` in its own process, stopped by :meth:`stop`."""

    def __init__(self, log_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [MOTO_SERVER, "-H", HOST, "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.client = s3_client(self.url)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited:\n{self.log_path.read_text()}")
            connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
            try:
                connection.request("GET", "/moto-api/")
                connection.getresponse().read()
                return
            except OSError:
                time.sleep(0.1)
            finally:
                connection.close()
        raise RuntimeError(f"moto_server not ready after {timeout}s")

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def s3_client(endpoint_url: str):
    """A plain client for the tests' own checks, with no retries to hide failures."""
    config = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})
    return boto3.session.Session(**CREDENTIALS, region_name=REGION).client(
        "s3", endpoint_url=endpoint_url, config=config
    )


def bucket_keys(client, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def pending_uploads(client, bucket: str) -> list[dict]:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


class StallingProxy:
    """Forwards TCP connections to ``upstream_port``, until told to stall.

    After :meth:`stall_after` ``n``, the connection whose bytes towards S3 cross ``n``
    more bytes stops right there: nothing more is forwarded either way and the socket
    stays open, as when S3 or the network stops answering mid-request. The other
    connections, and the ones opened afterwards (a client's retry, or its abort), work,
    unless :meth:`refuse` closed the door to everyone.
    """

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._forwarded = 0
        self._stall_at: int | None = None
        self._refusing = False
        self.stalled = threading.Event()
        self._sockets: list[socket.socket] = []
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stall_after(self, n: int) -> None:
        with self._lock:
            self._stall_at = self._forwarded + n
            self.stalled.clear()

    def refuse(self, refusing: bool = True) -> None:
        """Accept connections and close them at once (an S3 that is down); drop the
        open ones too."""
        self._refusing = refusing
        if refusing:
            self._close_sockets()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:  # close() may run meanwhile: what it missed is closed here
                if self._closing or self._refusing:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection((HOST, self.upstream_port))
                except OSError:
                    client.close()
                    continue
                self._sockets += [client, upstream]
            for source, sink, towards_s3 in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pipe, args=(source, sink, towards_s3), daemon=True
                ).start()

    def _allowance(self, size: int) -> int:
        """How many of ``size`` bytes towards S3 may pass before the stall point."""
        with self._lock:
            if self._stall_at is not None and self._forwarded + size > self._stall_at:
                allowed, self._stall_at = self._stall_at - self._forwarded, None
                self._forwarded += allowed
                self.stalled.set()
                return allowed
            self._forwarded += size
            return size

    def _pipe(self, source: socket.socket, sink: socket.socket, towards_s3: bool) -> None:
        try:
            while data := source.recv(65536):
                allowed = self._allowance(len(data)) if towards_s3 else len(data)
                sink.sendall(data[:allowed])
                if allowed < len(data):
                    return  # stop reading: the sender's buffers fill, its reads time out
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _close_sockets(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self._listener.close()
        self._close_sockets()
