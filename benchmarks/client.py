"""The client side of the upload benchmark: the files, their multipart bodies, the requests.

Both servers get the very same bytes from the same code, so that whatever differs between
their numbers is the servers' doing. Every answer is checked: a server that lost a byte
would otherwise look fast.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
from requests_toolbelt import MultipartEncoder

from servers import UPLOAD_TIMEOUT_S, BenchmarkError, Server

MIB = 1024 * 1024
GIB = 1024 * MIB
WRITE_CHUNK = MIB
AUTH = ("alice", "secret")
BUCKET, COLLECTION = "b", "c"


def make_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes in 1 MiB chunks; return their SHA-256.

    Random so that nothing on the way can compress or deduplicate it; in chunks so that
    the benchmark process stays small too (its memory is not measured, but the machine's
    is shared with the server).
    """
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            chunk = os.urandom(min(WRITE_CHUNK, remaining))
            digest.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Payload:
    """A generated file and the one multipart body that carries it, to both servers.

    The boundary is fixed, so every upload of the file sends the very same bytes; the
    body's hash and length are what the ceiling reports, the file's what the middleware does.
    """

    path: Path
    size: int
    sha256: str
    boundary: str
    body_size: int
    body_sha256: str

    def expected_by(self, server: Server) -> tuple[str, int]:
        """The (hash, size) ``server`` must answer if it received every byte unchanged."""
        if server.hashes_raw_body:
            return self.body_sha256, self.body_size
        return self.sha256, self.size


def multipart_body(file, name: str, boundary: str) -> MultipartEncoder:
    """The body of every upload: the file as field ``attachment``, read as it is sent."""
    return MultipartEncoder(
        {"attachment": (name, file, "application/octet-stream")}, boundary=boundary
    )


def make_payload(path: Path, size: int) -> Payload:
    """Generate the file, then read its multipart body through once to hash it."""
    sha256 = make_random_file(path, size)
    boundary = uuid.uuid4().hex
    digest, body_size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        body = multipart_body(file, path.name, boundary)
        while chunk := body.read(WRITE_CHUNK):
            digest.update(chunk)
            body_size += len(chunk)
    return Payload(path, size, sha256, boundary, body_size, digest.hexdigest())


def create_collection(session: requests.Session, base_url: str) -> None:
    for path in (f"/v1/buckets/{BUCKET}", f"/v1/buckets/{BUCKET}/collections/{COLLECTION}"):
        response = session.put(base_url + path, json={}, timeout=30)
        if response.status_code not in (200, 201):
            raise BenchmarkError(f"PUT {path}: {response.status_code} {response.text[:500]}")


def upload(session: requests.Session, base_url: str, record_id: str, payload: Payload) -> dict:
    """POST the payload's body, streamed from disk; the ceiling ignores the URL.

    MultipartEncoder reads the open file as the socket accepts bytes and gives requests the
    body's length, so the client sends a Content-Length (as browsers do) in constant memory.
    """
    url = f"{base_url}/v1/buckets/{BUCKET}/collections/{COLLECTION}/records/{record_id}/attachment"
    name = payload.path.name
    with open(payload.path, "rb") as file:
        body = multipart_body(file, name, payload.boundary)
        response = session.post(
            url,
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=(10, UPLOAD_TIMEOUT_S),
        )
    if response.status_code not in (200, 201):
        raise BenchmarkError(f"upload of {name}: {response.status_code} {response.text[:500]}")
    return response.json()


def check_answer(answer: dict, server: Server, payload: Payload) -> None:
    """The server must have received every byte, unchanged."""
    sha256, size = payload.expected_by(server)
    if answer.get("hash") != sha256 or answer.get("size") != size:
        raise BenchmarkError(
            f"upload of {payload.path.name} to {server.name}: server says "
            f"hash={answer.get('hash')} size={answer.get('size')}, "
            f"expected hash={sha256} size={size}"
        )
