"""``kinto-attachment upload --resumable``: files sent with tus, in pieces, so that a run
cut short (network, Ctrl-C) goes on from where it stopped when run again.

Where each unfinished upload lives is kept in a small JSON file (``--state``, by default
in the user's cache folder), keyed by the record's attachment URL *and* the file's
SHA-256: the same file sent to another record starts its own upload, and a changed file
starts afresh. (Keyed by content alone, as tuspy's URL storage is, a second record would
"resume" the first one's finished upload.)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from pathlib import Path

import requests

from .connection import TIMEOUT, Remote
from .errors import ToolError
from .progress import Advance

PIECE = 8 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
DEFAULT_STATE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / (
    "kinto-attachment/uploads.json"
)


class UploadState:
    """Unfinished uploads: (attachment URL, SHA-256) -> upload URL."""

    def __init__(self, path: Path):
        self.path = path

    def _read(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, key: str) -> str | None:
        return self._read().get(key)

    def put(self, key: str, location: str | None) -> None:
        entries = self._read()
        if location is None:
            entries.pop(key, None)
        else:
            entries[key] = location
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(entries, indent=1))
        temp.replace(self.path)


def tus_upload(
    remote: Remote,
    record_id: str,
    path: Path,
    part: tuple[str, str],
    data: dict,
    digest: str,
    advance: Advance,
    state: UploadState,
) -> dict:
    """Send ``path`` as the record's attachment with tus, resuming a stored upload; the
    record's attachment once done."""
    url = remote.attachment_url(record_id)
    key = f"{url} {digest}"
    size = path.stat().st_size
    location = state.get(key)
    offset = _offset(remote, location) if location else None
    if offset is None:
        location = _create(remote, url, size, part, data)
        state.put(key, location)
        offset = 0
    advance(offset)
    with open(path, "rb") as source:
        source.seek(offset)
        while offset < size or size == 0:
            piece = source.read(PIECE)
            answer = _request(
                remote,
                "PATCH",
                location,
                data=piece,
                headers={
                    **TUS,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset),
                    "Upload-Checksum": "sha256 "
                    + base64.b64encode(hashlib.sha256(piece).digest()).decode(),
                },
            )
            if answer.status_code != 204:
                raise ToolError(_refusal(answer))
            offset += len(piece)
            advance(len(piece))
            if size == 0:
                break
    state.put(key, None)
    record = _request(remote, "GET", url.rsplit("/", 1)[0])
    if record.status_code != 200:
        raise ToolError(_refusal(record))
    return record.json()["data"]["attachment"]


def _create(remote: Remote, url: str, size: int, part: tuple[str, str], data: dict) -> str:
    metadata = {"filename": part[0], "filetype": part[1]}
    if data:
        metadata["data"] = json.dumps(data)
    encoded = ",".join(
        f"{name} {base64.b64encode(value.encode()).decode()}" for name, value in metadata.items()
    )
    answer = _request(
        remote,
        "POST",
        url,
        headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": encoded},
    )
    if answer.status_code != 201 or "Location" not in answer.headers:
        raise ToolError(_refusal(answer))
    return answer.headers["Location"]


def _offset(remote: Remote, location: str) -> int | None:
    """Where a stored upload stands; ``None`` when the server has it no more."""
    answer = _request(remote, "HEAD", location, headers=TUS)
    if answer.status_code != 200:
        return None
    with contextlib.suppress(KeyError, ValueError):
        return int(answer.headers["Upload-Offset"])
    return None


def _request(remote: Remote, method: str, url: str, **kwargs) -> requests.Response:
    try:
        return remote.http.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.exceptions.RequestException as exc:
        raise remote.failure(exc) from None


def _refusal(answer: requests.Response) -> str:
    try:
        message = answer.json().get("message", answer.reason)
    except ValueError:
        message = answer.reason
    return f"refused by the server ({answer.status_code}): {message}"
