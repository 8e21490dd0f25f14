"""Amazon S3 (or any S3 API) storage with boto3.

Uploads stream through :class:`~.s3_writer.S3Writer`. What :meth:`FileWriter.commit`
keeps beside a file is the object's user metadata (``x-amz-meta-record``, ``-hash``,
``-size``, ``-shared``), so a check costs a ``HEAD``. Keys whose segments start with
``.`` (heartbeat probes) are not files; pending multipart uploads are the leftovers
:meth:`S3Storage.sweep_leftovers` aborts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ..errors import StorageUnavailable
from ..settings import S3Settings
from .base import FileWriter, Storage, StoredFileInfo
from .s3_meta import (
    S3_ERRORS,
    decode_metadata,
    encode_metadata,
    is_missing,
    is_precondition_failed,
    unavailable,
)
from .s3_writer import MIN_PART_SIZE, PartBody, S3Writer

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Files up to this size go in one request; larger ones in parts of this size, S3's
#: smallest, as an upload holds two parts in memory. Parts are larger for a file that
#: 10,000 of them would not hold (see :func:`.s3_writer.part_size`).
PART_SIZE = MIN_PART_SIZE
#: Largest object one ``CopyObject`` may copy; larger ones are copied in parts.
COPY_LIMIT = 5 * 1024 * MiB
_COPY_PART_SIZE = 64 * MiB

#: An unreachable S3 must fail a request within seconds, not hang a worker: a short
#: connect timeout, one retry (botocore's standard mode also retries throttling and 5xx).
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=20,
    retries={"mode": "standard", "total_max_attempts": 2},
    max_pool_connections=20,
)
#: ``CompleteMultipartUpload`` and ``CopyObject`` take time in proportion to the object's
#: size, and S3-compatible servers (MinIO, moto) send nothing until they are done (AWS
#: sends spaces meanwhile): their read timeout is at least this long (moto takes about
#: 20 s to complete a 2 GiB upload, 10 s to copy it).
FINISH_READ_TIMEOUT = 120


class S3Storage(Storage):
    #: An upload holds two parts besides the request's reads, and S3, not the reading,
    #: sets its pace. gunicorn holds a few copies of each read at once (about 5 MiB with
    #: 1 MiB reads): 128 KiB reads take 2-3 MiB off the peak, at the same speed and about
    #: 5% more CPU.
    upload_read_size = 128 * 1024

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
        config = (client_config or CLIENT_CONFIG).merge(_config_of(settings))
        # A session per storage: boto3's default session is shared, and not thread-safe.
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            region_name=settings.region,
        )
        self.client = session.client("s3", endpoint_url=settings.endpoint_url, config=config)
        finishing = Config(read_timeout=max(config.read_timeout, FINISH_READ_TIMEOUT))
        self.finishing_client = session.client(
            "s3", endpoint_url=settings.endpoint_url, config=config.merge(finishing)
        )
        # botocore's own default; "when_required" (its setting, or its environment
        # variable) says the S3 service takes no checksums: none is sent then.
        self.checksums = self.client.meta.config.request_checksum_calculation != "when_required"
        for operation in ("PutObject", "UploadPart"):
            self.client.meta.events.register(
                f"before-sign.s3.{operation}", _declare_header_checksum
            )

    def call(self, operation: str, key: str, *, finishing: bool = False, **params):
        """One S3 request; library errors become :class:`StorageUnavailable`.

        ``finishing``: one of the requests that take time with the object's size
        (see :data:`FINISH_READ_TIMEOUT`)."""
        client = self.finishing_client if finishing else self.client
        try:
            return getattr(client, operation)(Bucket=self.bucket, **params)
        except S3_ERRORS as error:
            raise unavailable(operation, key, error) from error

    def head(self, key: str) -> dict | None:
        """The object's ``HEAD`` answer, ``None`` when there is no such object."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except S3_ERRORS as error:
            if is_missing(error):
                return None
            raise unavailable("head_object", key, error) from error

    @property
    def acl_params(self) -> dict[str, str]:
        return {"ACL": self.acl} if self.acl else {}

    def checksum_params(self, body: PartBody) -> dict[str, str]:
        """The CRC32 S3 checks the body against: what botocore sends by default."""
        if not self.checksums:
            return {}
        return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": body.checksum()}

    def open_writer(self, key: str, content_type: str, size_hint: int | None = None) -> FileWriter:
        if not key or key.startswith("/") or "\x00" in key:
            raise StorageUnavailable(f"cannot write {key!r}: not a relative key")
        return S3Writer(self, key, content_type, size_hint)

    def delete(self, key: str) -> None:
        self.call("delete_object", key, Key=key)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def metadata(self, key: str) -> dict | None:
        head = self.head(key)  # S3 failing raises: "no metadata" would mean a plugin's file
        return None if head is None else decode_metadata(head.get("Metadata", {}))

    def stat(self, key: str) -> StoredFileInfo | None:
        head = self.head(key)
        if head is None:
            return None
        return StoredFileInfo(key, head["ContentLength"], head["LastModified"].timestamp())

    def update_metadata(self, key: str, changes: Mapping[str, object]) -> None:
        """Rewrites the object's metadata in place (a server-side copy onto itself).

        Conditional on the ``ETag`` just read, so that a concurrent change is never undone;
        retried once when that happens.
        """
        for _ in range(2):
            head = self.head(key)
            metadata = None if head is None else decode_metadata(head.get("Metadata", {}))
            if metadata is None:
                return
            try:
                self.replace_metadata(key, head, {**metadata, **changes})
                return
            except StorageUnavailable as error:
                cause = error.__cause__
                if not (is_precondition_failed(cause) or is_missing(cause)):
                    raise
        raise StorageUnavailable(f"cannot update the metadata of {key!r}: it keeps changing")

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
            self.call("copy_object", key, finishing=True, Key=key, CopySource=source, **params)
            return
        transfer = TransferConfig(
            multipart_threshold=self.copy_limit, multipart_chunksize=_COPY_PART_SIZE
        )
        try:
            self.finishing_client.copy(source, self.bucket, key, ExtraArgs=params, Config=transfer)
        except S3_ERRORS as error:
            raise unavailable("copy", key, error) from error

    def scan(self) -> Iterator[StoredFileInfo]:
        for item in self._objects():
            if not _is_hidden(item["Key"]):
                yield StoredFileInfo(item["Key"], item["Size"], item["LastModified"].timestamp())

    def sweep_leftovers(self, older_than: float, dry_run: bool = False) -> Iterator[StoredFileInfo]:
        """Multipart uploads idle since before ``older_than`` and never completed (their
        parts are billed), and hidden objects (heartbeat probes whose delete failed).

        An upload counts as idle from its last part, not its start: one that has been
        streaming for longer than the grace period is still in progress."""
        for upload in self._pending_uploads():
            if upload["Initiated"].timestamp() >= older_than:
                continue
            key, upload_id = upload["Key"], upload["UploadId"]
            parts = self._parts(key, upload_id)
            if parts is None:
                continue  # completed or aborted meanwhile
            size, last_active = parts
            last_active = max(last_active, upload["Initiated"].timestamp())
            if last_active >= older_than:
                continue
            if not dry_run:
                self.call("abort_multipart_upload", key, Key=key, UploadId=upload_id)
            yield StoredFileInfo(key, size, last_active)
        for item in self._objects():
            modified = item["LastModified"].timestamp()
            if _is_hidden(item["Key"]) and modified < older_than:
                if not dry_run:
                    self.delete(item["Key"])
                yield StoredFileInfo(item["Key"], item["Size"], modified)

    def _pages(self, operation: str, result_key: str, **params) -> Iterator[dict]:
        try:
            for page in self.client.get_paginator(operation).paginate(Bucket=self.bucket, **params):
                yield from page.get(result_key, [])
        except S3_ERRORS as error:
            raise unavailable(operation, self.bucket, error) from error

    def _objects(self) -> Iterator[dict]:
        return self._pages("list_objects_v2", "Contents")

    def _pending_uploads(self) -> Iterator[dict]:
        return self._pages("list_multipart_uploads", "Uploads")

    def _parts(self, key: str, upload_id: str) -> tuple[int, float] | None:
        """Total size and time of the latest part of a pending upload; ``None`` once it
        is no longer pending."""
        size, last_active = 0, 0.0
        try:
            for part in self._pages("list_parts", "Parts", Key=key, UploadId=upload_id):
                size += part["Size"]
                last_active = max(last_active, part["LastModified"].timestamp())
        except StorageUnavailable as error:
            if is_missing(error.__cause__):
                return None
            raise
        return size, last_active


def _declare_header_checksum(request, **kwargs) -> None:
    """Tell botocore's signer that the body travels with our CRC32 header.

    botocore leaves a body out of the signature over HTTPS only when it knows the body
    carries a checksum, and it only knows of those it computed itself: a CRC32 we pass
    would otherwise have it SHA-256 every part, at twice the CRC's cost.
    """
    if "x-amz-checksum-crc32" in request.headers:
        request.context.setdefault("checksum", {})["request_algorithm"] = {
            "algorithm": "crc32",
            "in": "header",
            "name": "x-amz-checksum-crc32",
        }


def _config_of(settings: S3Settings) -> Config:
    """What the settings change in :data:`CLIENT_CONFIG`."""
    options: dict = {"s3": {"addressing_style": settings.addressing_style}}
    if settings.timeout_seconds is not None:
        options["connect_timeout"] = options["read_timeout"] = settings.timeout_seconds
    if settings.num_retries is not None:
        options["retries"] = {"mode": "standard", "total_max_attempts": settings.num_retries + 1}
    return Config(**options)


def _is_hidden(key: str) -> bool:
    return any(segment.startswith(".") for segment in key.split("/"))
