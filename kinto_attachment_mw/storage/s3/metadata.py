"""What S3 storage keeps in each object's user metadata, and how S3's errors are read.

User metadata travels as HTTP headers (``x-amz-meta-NAME``), so values are ASCII text:
strings as they are, anything else as JSON, decoded back to the same values.
"""

from __future__ import annotations

from collections.abc import Mapping

from botocore.exceptions import BotoCoreError, ClientError

from ..base import StorageUnavailable
from ..metadata import StoredFileMetadata

#: The errors of an S3 call that mean "S3 failed" (unreachable, time-out, refusal).
S3_ERRORS = (BotoCoreError, ClientError)


def encode_metadata(metadata: StoredFileMetadata) -> dict[str, str]:
    return metadata.to_text()


def decode_metadata(encoded: Mapping[str, str]) -> StoredFileMetadata | None:
    """What :func:`encode_metadata` wrote; ``None`` for an object stored by anything else."""
    return StoredFileMetadata.from_text(encoded)


def _status(error: Exception) -> int:
    if not isinstance(error, ClientError):
        return 0
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(error: Exception) -> str:
    if not isinstance(error, ClientError):
        return ""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_missing(error: Exception | None) -> bool:
    return error is not None and (
        _status(error) == 404 or _code(error) in ("NoSuchKey", "404", "NotFound")
    )


def is_precondition_failed(error: Exception | None) -> bool:
    return error is not None and (_status(error) == 412 or _code(error) == "PreconditionFailed")


def unavailable(operation: str, key: str, error: Exception) -> StorageUnavailable:
    """The project's error for a failed S3 call, the library's error as its cause."""
    failure = StorageUnavailable(f"S3 {operation} of {key!r} failed: {error}")
    failure.__cause__ = error
    return failure
