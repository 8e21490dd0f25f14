"""The connection to one S3 bucket: boto3's clients, their time-outs and retries, and the
few calls both the storage and its upload writer make, with S3's errors translated.
"""

from __future__ import annotations

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ...config.s3 import S3Settings
from ..metadata import StoredFileMetadata
from .metadata import S3_ERRORS, encode_metadata, is_missing, unavailable
from .parts import MIN_PART_SIZE, PartBody

MiB = 1024 * 1024
#: Files up to this size go in one request; larger ones in parts of this size, S3's
#: smallest, as an upload holds two parts in memory. Parts are larger for a file that
#: 10,000 of them would not hold (see :func:`.parts.part_size`).
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


class S3Objects:
    """What the storage and its writers share of one bucket."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        part_size: int = PART_SIZE,
        copy_limit: int = COPY_LIMIT,
        client_config: Config | None = None,
    ):
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
        # Download URLs are signed with Signature Version 4, which every region takes.
        self.presigning_client = session.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            config=config.merge(Config(signature_version="s3v4")),
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

    def acl_params(self, private: bool = False) -> dict[str, str]:
        """The configured ACL; ``private`` when the file is (no ACL at all when none is
        configured: the bucket's own rules apply, ACLs may be disabled there)."""
        if not self.acl:
            return {}
        return {"ACL": "private" if private else self.acl}

    def checksum_params(self, body: PartBody) -> dict[str, str]:
        """The CRC32 S3 checks the body against: what botocore sends by default."""
        if not self.checksums:
            return {}
        return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": body.checksum()}

    def delete(self, key: str) -> None:
        self.call("delete_object", key, Key=key)

    def replace_metadata(self, key: str, head: dict, metadata: StoredFileMetadata) -> None:
        """Copy the object onto itself with new user metadata (see :meth:`copy_object`)."""
        self.copy_object(key, key, head, metadata)

    def copy_object(self, key: str, target: str, head: dict, metadata: StoredFileMetadata) -> None:
        """Copy ``key`` (as ``head`` found it: the copy fails if it changed since) to
        ``target`` with new user metadata, keeping its type; the ACL follows the metadata
        (public unless ``private``).

        Objects over :data:`COPY_LIMIT` (``CopyObject``'s maximum) are copied in parts.
        """
        params = {
            "Metadata": encode_metadata(metadata),
            "MetadataDirective": "REPLACE",
            "ContentType": head.get("ContentType", "application/octet-stream"),
            "CopySourceIfMatch": head["ETag"],
            **self.acl_params(metadata.private),
        }
        source = {"Bucket": self.bucket, "Key": key}
        if head["ContentLength"] <= self.copy_limit:
            self.call("copy_object", key, finishing=True, Key=target, CopySource=source, **params)
            return
        transfer = TransferConfig(
            multipart_threshold=self.copy_limit, multipart_chunksize=_COPY_PART_SIZE
        )
        try:
            self.finishing_client.copy(
                source, self.bucket, target, ExtraArgs=params, Config=transfer
            )
        except S3_ERRORS as error:
            raise unavailable("copy", key, error) from error


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
