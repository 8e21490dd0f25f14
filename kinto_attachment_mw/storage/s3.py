"""Amazon S3 (or any S3 API) storage with boto3.

Uploads stream with bounded memory: a file up to :data:`PART_SIZE` goes in one
``PutObject``, a larger one as a multipart upload whose parts are sent as they arrive
(never more than one part in memory). Objects are never overwritten: ``PutObject`` and
``CompleteMultipartUpload`` are conditional (``If-None-Match: *``). What
:meth:`FileWriter.commit` keeps beside a file is the object's user metadata
(``x-amz-meta-record``, ``-hash``, ``-size``, ``-shared``), so a check costs a ``HEAD``.

Keys whose segments start with ``.`` (heartbeat probes) are not files; pending multipart
uploads are the leftovers :meth:`S3Storage.sweep_leftovers` aborts.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterator, Mapping

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import StorageUnavailable
from ..settings import S3Settings
from .base import FileWriter, Storage, StoredFileInfo

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Files up to this size go in one request; larger ones in parts of this size (S3's
#: minimum part is 5 MiB; 10,000 parts of 8 MiB allow files up to 78 GiB).
PART_SIZE = 8 * MiB
MAX_PARTS = 10_000
#: Largest object one ``CopyObject`` may copy; larger ones are copied in parts.
COPY_LIMIT = 5 * 1024 * MiB
_COPY_PART_SIZE = 64 * MiB
_MAX_NAME_ATTEMPTS = 100
#: Metadata fields kept as plain strings; any other is JSON (size: int, shared: bool).
_STRING_FIELDS = frozenset({"record", "hash"})

#: An unreachable S3 must fail a request within seconds, not hang a worker: a short
#: connect timeout, one retry (botocore's standard mode also retries throttling and 5xx).
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=20,
    retries={"mode": "standard", "total_max_attempts": 2},
    max_pool_connections=20,
)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_missing(error: ClientError) -> bool:
    return _status(error) == 404 or _error_code(error) in ("NoSuchKey", "404", "NotFound")


def _is_precondition_failed(error: ClientError) -> bool:
    return _status(error) == 412 or _error_code(error) == "PreconditionFailed"


def encode_metadata(metadata: Mapping[str, object]) -> dict[str, str]:
    """S3 user metadata is ASCII text: strings as they are, other values as JSON."""
    encoded = {}
    for name, value in metadata.items():
        if value is None:
            continue
        if name in _STRING_FIELDS and isinstance(value, str) and value.isascii():
            encoded[name] = value
        else:
            encoded[name] = json.dumps(value)
    return encoded


def decode_metadata(encoded: Mapping[str, str]) -> dict | None:
    """What :func:`encode_metadata` wrote; ``None`` for an object stored by anything else."""
    if "record" not in encoded and "hash" not in encoded:
        return None
    decoded: dict[str, object] = {}
    for name, value in encoded.items():
        if name in _STRING_FIELDS:
            decoded[name] = value
            continue
        try:
            decoded[name] = json.loads(value)
        except ValueError:
            decoded[name] = value
    return decoded


class S3Storage(Storage):
    def __init__(
        self,
        settings: S3Settings,
        base_url: str = "",
        *,
        part_size: int = PART_SIZE,
        copy_limit: int = COPY_LIMIT,
        client_config: Config | None = None,
    ):
        super().__init__(base_url)
        self.bucket = settings.bucket_name
        self.acl = settings.acl
        self.part_size = part_size
        self.copy_limit = copy_limit
        config = (client_config or CLIENT_CONFIG).merge(
            Config(s3={"addressing_style": settings.addressing_style})
        )
        # A session per storage: boto3's default session is shared, and not thread-safe.
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            region_name=settings.region,
        )
        self.client = session.client("s3", endpoint_url=settings.endpoint_url, config=config)

    def call(self, operation: str, key: str, **params):
        """One S3 request; library errors become :class:`StorageUnavailable`."""
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"S3 {operation} of {key!r} failed: {error}") from error

    def head(self, key: str) -> dict | None:
        """The object's ``HEAD`` answer, ``None`` when there is no such object."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise StorageUnavailable(f"S3 head_object of {key!r} failed: {error}") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"S3 head_object of {key!r} failed: {error}") from error

    @property
    def acl_params(self) -> dict[str, str]:
        return {"ACL": self.acl} if self.acl else {}

    def open_writer(self, key: str, content_type: str) -> FileWriter:
        if not key or key.startswith("/") or "\x00" in key:
            raise StorageUnavailable(f"cannot write {key!r}: not a relative key")
        return _S3Writer(self, key, content_type)

    def delete(self, key: str) -> None:
        self.call("delete_object", key, Key=key)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def metadata(self, key: str) -> dict | None:
        """``None`` also when S3 cannot be asked: request code then leaves the file alone."""
        try:
            head = self.head(key)
        except StorageUnavailable as error:
            logger.warning("No metadata for %s: %s", key, error)
            return None
        return None if head is None else decode_metadata(head.get("Metadata", {}))

    def stat(self, key: str) -> StoredFileInfo | None:
        head = self.head(key)
        if head is None:
            return None
        return StoredFileInfo(key, head["ContentLength"], head["LastModified"].timestamp())

    def mark_shared(self, key: str) -> None:
        """Rewrites the object's metadata in place (a server-side copy onto itself).

        Conditional on the ``ETag`` just read, so that a concurrent change is never undone;
        retried once when that happens.
        """
        for _ in range(2):
            head = self.head(key)
            metadata = None if head is None else decode_metadata(head.get("Metadata", {}))
            if metadata is None or metadata.get("shared"):
                return
            try:
                self.replace_metadata(key, head, {**metadata, "shared": True})
                return
            except StorageUnavailable as error:
                cause = error.__cause__
                if not isinstance(cause, ClientError) or not (
                    _is_precondition_failed(cause) or _is_missing(cause)
                ):
                    raise
        raise StorageUnavailable(f"cannot mark {key!r} shared: it keeps changing")

    def replace_metadata(self, key: str, head: dict, metadata: Mapping[str, object]) -> None:
        """Copy the object onto itself with new user metadata, keeping its type and ACL.

        Objects over :data:`COPY_LIMIT` (``CopyObject``'s maximum) are copied in parts.
        """
        params = {
            "Metadata": encode_metadata(metadata),
            "MetadataDirective": "REPLACE",
            "ContentType": head.get("ContentType", "application/octet-stream"),
            "CopySourceIfMatch": head["ETag"],
            **self.acl_params,
        }
        source = {"Bucket": self.bucket, "Key": key}
        if head["ContentLength"] <= self.copy_limit:
            self.call("copy_object", key, Key=key, CopySource=source, **params)
            return
        transfer = TransferConfig(
            multipart_threshold=self.copy_limit, multipart_chunksize=_COPY_PART_SIZE
        )
        try:
            self.client.copy(source, self.bucket, key, ExtraArgs=params, Config=transfer)
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"S3 copy of {key!r} failed: {error}") from error

    def scan(self) -> Iterator[StoredFileInfo]:
        for item in self._objects():
            if not _is_hidden(item["Key"]):
                yield StoredFileInfo(item["Key"], item["Size"], item["LastModified"].timestamp())

    def sweep_leftovers(self, older_than: float, dry_run: bool = False) -> Iterator[StoredFileInfo]:
        """Multipart uploads initiated before ``older_than`` and never completed (their
        parts are billed), and hidden objects (heartbeat probes whose delete failed)."""
        for upload in self._pending_uploads():
            initiated = upload["Initiated"].timestamp()
            if initiated >= older_than:
                continue
            key, upload_id = upload["Key"], upload["UploadId"]
            size = self._parts_size(key, upload_id)
            if not dry_run:
                self.call("abort_multipart_upload", key, Key=key, UploadId=upload_id)
            yield StoredFileInfo(key, size, initiated)
        for item in self._objects():
            modified = item["LastModified"].timestamp()
            if _is_hidden(item["Key"]) and modified < older_than:
                if not dry_run:
                    self.delete(item["Key"])
                yield StoredFileInfo(item["Key"], item["Size"], modified)

    def pending_uploads(self) -> list[dict]:
        """The bucket's multipart uploads not yet completed nor aborted."""
        return list(self._pending_uploads())

    def _pages(self, operation: str, result_key: str, **params) -> Iterator[dict]:
        try:
            for page in self.client.get_paginator(operation).paginate(Bucket=self.bucket, **params):
                yield from page.get(result_key, [])
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"S3 {operation} failed: {error}") from error

    def _objects(self) -> Iterator[dict]:
        return self._pages("list_objects_v2", "Contents")

    def _pending_uploads(self) -> Iterator[dict]:
        return self._pages("list_multipart_uploads", "Uploads")

    def _parts_size(self, key: str, upload_id: str) -> int:
        parts = self._pages("list_parts", "Parts", Key=key, UploadId=upload_id)
        return sum(part["Size"] for part in parts)


def _is_hidden(key: str) -> bool:
    return any(segment.startswith(".") for segment in key.split("/"))


def _candidate_keys(key: str) -> Iterator[str]:
    """``key``, then ``stem-1.ext``, ``stem-2.ext``...: the names local storage tries too."""
    stem, extension = posixpath.splitext(key)
    yield key
    for attempt in range(1, _MAX_NAME_ATTEMPTS):
        yield f"{stem}-{attempt}{extension}"


class _S3Writer(FileWriter):
    """Buffers up to one part; the first full part starts a multipart upload."""

    def __init__(self, storage: S3Storage, key: str, content_type: str):
        self._storage = storage
        self._key = key
        self._content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []
        self._closed = False

    def write(self, chunk: bytes) -> None:
        if self._closed:
            raise StorageUnavailable(f"cannot write {self._key}: writer closed")
        self._buffer += chunk
        part_size = self._storage.part_size
        try:
            while len(self._buffer) >= part_size:
                self._send_part(part_size)
        except StorageUnavailable:
            self.abort()
            raise

    def commit(self, metadata: Mapping[str, object]) -> str:
        if self._closed:
            raise StorageUnavailable(f"cannot store {self._key}: writer closed")
        try:
            key = self._put(metadata) if self._upload_id is None else self._complete(metadata)
        except StorageUnavailable:
            self.abort()
            raise
        self._closed = True
        self._buffer = bytearray()
        return key

    def abort(self) -> None:
        """Abort the multipart upload, if any: its parts would stay billed otherwise. A
        failure is logged; :meth:`S3Storage.sweep_leftovers` aborts what remains."""
        self._closed = True
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._storage.call(
                "abort_multipart_upload", self._key, Key=self._key, UploadId=upload_id
            )
        except StorageUnavailable as error:
            logger.warning(
                "Multipart upload %s of %s left pending: %s", upload_id, self._key, error
            )

    def _put(self, metadata: Mapping[str, object]) -> str:
        """One conditional ``PutObject``; the next candidate name when one is taken."""
        storage = self._storage
        body = bytes(self._buffer)
        for key in _candidate_keys(self._key):
            try:
                storage.client.put_object(
                    Bucket=storage.bucket,
                    Key=key,
                    Body=body,
                    ContentType=self._content_type,
                    Metadata=encode_metadata(metadata),
                    IfNoneMatch="*",
                    **storage.acl_params,
                )
                return key
            except ClientError as error:
                if _is_precondition_failed(error):
                    continue
                raise StorageUnavailable(f"S3 put_object of {key!r} failed: {error}") from error
            except BotoCoreError as error:
                raise StorageUnavailable(f"S3 put_object of {key!r} failed: {error}") from error
        raise StorageUnavailable(f"no free name for {self._key}")

    def _start(self) -> None:
        """Pick a free name (``CompleteMultipartUpload`` cannot switch to another one) and
        start the upload there."""
        storage = self._storage
        for key in _candidate_keys(self._key):
            if storage.head(key) is None:
                break
        else:
            raise StorageUnavailable(f"no free name for {self._key}")
        answer = storage.call(
            "create_multipart_upload",
            key,
            Key=key,
            ContentType=self._content_type,
            **storage.acl_params,
        )
        self._key, self._upload_id = key, answer["UploadId"]

    def _send_part(self, size: int) -> None:
        if self._upload_id is None:
            self._start()
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageUnavailable(f"{self._key}: over {MAX_PARTS} parts")
        with memoryview(self._buffer) as view:
            body = bytes(view[:size])  # the one copy: S3 needs the part as bytes
        del self._buffer[:size]
        answer = self._storage.call(
            "upload_part",
            self._key,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _complete(self, metadata: Mapping[str, object]) -> str:
        """Send the last part, complete (only if the name is still free), then write the
        metadata, known only now, with a copy onto itself. Should that fail, the object
        goes: no file is left without its metadata by this writer."""
        if self._buffer:
            self._send_part(len(self._buffer))
        storage, key = self._storage, self._key
        try:
            storage.client.complete_multipart_upload(
                Bucket=storage.bucket,
                Key=key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
                IfNoneMatch="*",
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"S3 complete of {key!r} failed: {error}") from error
        self._upload_id = None
        try:
            head = storage.head(key)
            if head is None:
                raise StorageUnavailable(f"{key!r} vanished right after its upload")
            storage.replace_metadata(key, head, metadata)
        except StorageUnavailable:
            try:
                storage.delete(key)
            except StorageUnavailable as error:
                logger.warning("Upload %s left without its metadata: %s", key, error)
            raise
        return key
