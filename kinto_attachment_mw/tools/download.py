"""``kinto-attachment download``: every attachment of a collection into a folder.

A file is kept only once its size and SHA-256 match the record (and, for a gzipped
attachment, once the uncompressed bytes match ``original``): it is written under a
temporary name and renamed into place only then.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import requests

from .connection import TIMEOUT, Remote
from .errors import ToolError
from .files import BLOCK, gunzip_hashing, sha256_of, temp_beside, write_hashing
from .progress import Advance, Progress
from .records import content_hash, original_of
from .summary import Summary


def local_name(record: dict) -> str:
    """The file name to save a record's attachment under (never a path)."""
    described = original_of(record) or record["attachment"]
    name = Path(str(described.get("filename") or "")).name
    return name if name and not name.startswith(".") else record["id"]


def target_names(records: list[dict]) -> dict[str, str]:
    """Record id to file name; records sharing a name are told apart by their id."""
    names = {record["id"]: local_name(record) for record in records}
    counts = Counter(names.values())
    return {rid: name if counts[name] == 1 else f"{rid}-{name}" for rid, name in names.items()}


def check(what: str, got: tuple[str, int], expected: dict) -> None:
    """Refuse bytes whose hash or size differs from the record's description."""
    digest, size = got
    if size != expected.get("size"):
        raise ToolError(f"{what} has {size} bytes, the record says {expected.get('size')}")
    if digest != expected.get("hash"):
        raise ToolError(f"{what} does not match the SHA-256 in the record")


class Downloader:
    def __init__(self, remote: Remote, folder: Path):
        self.remote = remote
        self.folder = folder

    def run(self, progress_enabled: bool | None = None) -> Summary:
        base_url = self.remote.files_base_url()
        records = [record for record in self.remote.records() if record.get("attachment")]
        names = target_names(records)
        self.folder.mkdir(parents=True, exist_ok=True)
        summary = Summary("downloaded")
        total = sum(int(record["attachment"].get("size") or 0) for record in records)
        progress = Progress(total, "download", progress_enabled)
        try:
            for record in records:
                name = names[record["id"]]
                try:
                    outcome = self.one(record, self.folder / name, base_url, progress)
                except (ToolError, OSError) as exc:
                    progress.note(f"failed: {name}: {exc}")
                    summary.failed.append(name)
                    continue
                progress.note(f"{outcome}: {name}")
                (summary.done if outcome == "downloaded" else summary.skipped).append(name)
        finally:
            progress.close()
        return summary

    def one(self, record: dict, target: Path, base_url: str, progress: Progress) -> str:
        attachment = record["attachment"]
        size = int(attachment.get("size") or 0)
        if target.is_file() and sha256_of(target)[0] == content_hash(record):
            progress.skip(size)
            return "skipped"
        url, session = self.remote.file_source(base_url, attachment["location"])
        with temp_beside(target) as part:
            with progress.file(target.name, size) as advance:
                got = self.fetch(session, url, part, advance)
            check("the downloaded file", got, attachment)
            original = original_of(record)
            if original is None:
                part.replace(target)
                return "downloaded"
            with temp_beside(target) as plain:
                try:
                    unzipped = gunzip_hashing(part, plain)
                except (EOFError, zlib.error, OSError) as exc:
                    raise ToolError(f"cannot decompress: {exc}") from None
                check("the decompressed file", unzipped, original)
                plain.replace(target)
        return "downloaded"

    def fetch(
        self, session: requests.Session, url: str, part: Path, advance: Advance
    ) -> tuple[str, int]:
        try:
            with session.get(url, stream=True, timeout=TIMEOUT) as response:
                if response.status_code != 200:
                    raise ToolError(f"GET {url} answered {response.status_code}")
                return write_hashing(response.iter_content(BLOCK), part, advance)
        except requests.exceptions.RequestException as exc:
            raise self.remote.failure(exc, url) from None
