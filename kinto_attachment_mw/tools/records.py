"""Conventions shared by upload and download: record ids and gzip descriptions."""

from __future__ import annotations

import uuid

# Fixed, so that the same file name (or content) maps to the same record everywhere.
NAMESPACE = uuid.UUID("6f1d6b0e-2b1a-4f7e-9d7e-6b1a2c3d4e5f")

# Record field the upload tool sets with --gzip: the uploaded file's own description,
# plus ``gzip_hash``, the hash of the compressed bytes it goes with. The server owns
# ``attachment``, so a client-side gzip cannot write ``attachment.original`` itself.
CLIENT_GZIP_FIELD = "gzipped_original"


def record_id_for(key: str) -> str:
    """A valid Kinto record id, stable for a given file name or content hash."""
    return str(uuid.uuid5(NAMESPACE, key))


def original_of(record: dict) -> dict | None:
    """The uncompressed file a gzipped attachment stands for, or None.

    ``attachment.original`` when the server gzipped it; else the upload tool's own
    record field, trusted only while the attachment is still the gzip it described.
    """
    attachment = record.get("attachment") or {}
    if attachment.get("original"):
        return attachment["original"]
    client_side = record.get(CLIENT_GZIP_FIELD)
    if client_side and client_side.get("gzip_hash") == attachment.get("hash"):
        return client_side
    return None


def content_hash(record: dict) -> str | None:
    """SHA-256 of the file as the user has it (uncompressed), if the record has one."""
    original = original_of(record)
    if original is not None:
        return original.get("hash")
    return (record.get("attachment") or {}).get("hash")
