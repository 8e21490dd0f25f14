"""``kinto-attachment upload``: each file becomes the attachment of its own record.

Record ids derive from the file name (or content), so a second run updates the same
records; files whose content the server already has are skipped.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Sequence
from pathlib import Path

import requests
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

from .connection import TIMEOUT, Remote
from .errors import ToolError
from .files import gzip_to_temp, sha256_of
from .progress import Advance, Progress
from .records import CLIENT_GZIP_FIELD, content_hash, record_id_for
from .resumable import UploadState, tus_upload
from .summary import Summary

GZIP_MIMETYPE = "application/gzip"


def guess_mimetype(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def post_attachment(
    remote: Remote,
    record_id: str,
    path: Path,
    part: tuple[str, str],
    data: dict,
    advance: Advance,
) -> dict:
    """Stream ``path`` as the record's attachment, sent as ``part`` (file name and
    type); the server's metadata answer."""
    with open(path, "rb") as source:
        encoder = MultipartEncoder(
            fields={
                "attachment": (*part[:1], source, part[1]),
                "data": json.dumps(data),
            }
        )
        size = path.stat().st_size
        sent = 0

        def on_read(monitor: MultipartEncoderMonitor) -> None:
            nonlocal sent
            # The form's own headers are counted too; the bar only shows file bytes.
            now = min(monitor.bytes_read, size)
            advance(now - sent)
            sent = now

        body = MultipartEncoderMonitor(encoder, on_read)
        try:
            response = remote.http.post(
                remote.attachment_url(record_id),
                data=body,
                headers={"Content-Type": body.content_type},
                timeout=TIMEOUT,
            )
        except requests.exceptions.RequestException as exc:
            raise remote.failure(exc) from None
    if response.status_code not in (200, 201):
        try:
            message = response.json().get("message", response.reason)
        except ValueError:
            message = response.reason
        raise ToolError(f"refused by the server ({response.status_code}): {message}")
    return response.json()


class Uploader:
    def __init__(
        self,
        remote: Remote,
        *,
        gzip: bool,
        force: bool,
        id_from: str,
        resumable: UploadState | None = None,
    ):
        self.remote = remote
        self.gzip = gzip
        self.force = force
        self.id_from = id_from
        self.resumable = resumable  # tus, resuming what a previous run left unfinished

    def run(self, paths: Sequence[Path], progress_enabled: bool | None = None) -> Summary:
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise ToolError(f"not a file: {', '.join(missing)}")
        self.remote.create_collection_if_missing()
        existing = {record["id"]: record for record in self.remote.records()}
        summary = Summary("uploaded")
        progress = Progress(sum(path.stat().st_size for path in paths), "upload", progress_enabled)
        try:
            for path in paths:
                try:
                    outcome = self.one(path, existing, progress)
                except (ToolError, OSError) as exc:
                    progress.note(f"failed: {path.name}: {exc}")
                    summary.failed.append(path.name)
                    continue
                progress.note(f"{outcome}: {path.name}")
                (summary.done if outcome == "uploaded" else summary.skipped).append(path.name)
        finally:
            progress.close()
        return summary

    def one(self, path: Path, existing: dict[str, dict], progress: Progress) -> str:
        digest, size = sha256_of(path)
        record_id = record_id_for(path.name if self.id_from == "name" else digest)
        record = existing.get(record_id)
        if record is not None and not self.force and content_hash(record) == digest:
            progress.skip(size)
            return "skipped"
        if not self.gzip:
            with progress.file(path.name, size) as advance:
                part = (path.name, guess_mimetype(path.name))
                data = {}
                if self.resumable is not None:
                    meta = tus_upload(
                        self.remote, record_id, path, part, data, digest, advance, self.resumable
                    )
                else:
                    meta = post_attachment(self.remote, record_id, path, part, data, advance)
        else:
            data, meta = self.gzipped(path, record_id, digest, size, progress)
        # Later files of this run may map to the same record (--id-from hash).
        existing[record_id] = {**(record or {}), **data, "id": record_id, "attachment": meta}
        return "uploaded"

    def gzipped(
        self, path: Path, record_id: str, digest: str, size: int, progress: Progress
    ) -> tuple[dict, dict]:
        """Upload ``path`` compressed; the record fields sent and the attachment."""
        compressed = gzip_to_temp(path)
        try:
            gzip_hash, gzip_size = sha256_of(compressed)
            original = {
                "filename": path.name,
                "hash": digest,
                "mimetype": guess_mimetype(path.name),
                "size": size,
                "gzip_hash": gzip_hash,
            }
            part = (path.name + ".gz", GZIP_MIMETYPE)
            data = {CLIENT_GZIP_FIELD: original}
            with progress.file(part[0], gzip_size, share=size) as advance:
                meta = post_attachment(self.remote, record_id, compressed, part, data, advance)
        finally:
            compressed.unlink(missing_ok=True)
        return data, meta
