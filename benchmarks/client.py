"""The client side of the upload benchmark: the files, their multipart bodies, the requests.

Both servers get the very same bytes from the same code, so that whatever differs between
their numbers is the servers' doing. Every answer is checked: a server that lost a byte
would otherwise look fast.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Iterator
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


#: The two kinds of file: random bytes (nothing can compress them, few line breaks: one in
#: 256 bytes) and text-like lines (one break in ~60 bytes). The plugin's parser reads the
#: body line by line, so its speed depends on which.
RANDOM, TEXT = "random", "text"
KINDS = (RANDOM, TEXT)
_WORDS = (
    "kinto record bucket collection attachment file upload stream hash size location "
    "mimetype original release font certificate blocklist model client server storage "
    "the a of to and in is for on with that by from at as be this are or it an"
).split()


def _text_block(seed: int) -> bytes:
    """1 MiB of text lines made of words, reproducible from ``seed``."""
    rng = random.Random(seed)
    lines, size = [], 0
    while size < WRITE_CHUNK:
        line = " ".join(rng.choices(_WORDS, k=rng.randint(4, 14))).capitalize() + ".\n"
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()[:WRITE_CHUNK]


def _chunks(kind: str, size: int) -> Iterator[bytes]:
    """``size`` bytes of ``kind`` in 1 MiB chunks.

    Text is 16 blocks of words cycled, each chunk starting with its own number so that no
    two chunks are equal; generating a fresh MiB of words each time would take longer than
    uploading it.
    """
    blocks = [_text_block(seed) for seed in range(16)] if kind == TEXT else []
    index, remaining = 0, size
    while remaining:
        length = min(WRITE_CHUNK, remaining)
        if kind == TEXT:
            stamp = f"{index:012d} ".encode()
            chunk = (stamp + blocks[index % len(blocks)])[:length]
        else:
            chunk = os.urandom(length)
        yield chunk
        index += 1
        remaining -= length


def make_file(path: Path, size: int, kind: str = RANDOM) -> str:
    """Write ``size`` bytes of ``kind`` in 1 MiB chunks; return their SHA-256.

    In chunks so that the benchmark process stays small too (its memory is not measured,
    but the machine's is shared with the server).
    """
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for chunk in _chunks(kind, size):
            digest.update(chunk)
            out.write(chunk)
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


def make_payload(path: Path, size: int, kind: str = RANDOM) -> Payload:
    """Generate the file, then read its multipart body through once to hash it."""
    sha256 = make_file(path, size, kind)
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
