"""The connection to one Google Cloud Storage bucket: the client, its credentials, its
time-outs and retries, and the calls both the storage and its upload writer make, with
GCS's errors translated into :class:`StorageUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from google.api_core import exceptions as api_errors
from google.api_core.exceptions import GoogleAPIError
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from ...config import ConfigurationError
from ...config.gcs import GCSSettings
from ..base import StorageUnavailable
from ..metadata import StoredFileMetadata

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Files up to this size go in one request; larger ones in a resumable upload, a chunk of
#: this size at a time (GCS takes multiples of 256 KiB). An upload holds two chunks.
CHUNK_SIZE = 4 * MiB

#: An unreachable GCS must fail a request within seconds, not hang a worker:
#: (connect, read) time-outs of each request, and retries within a short deadline
#: (google-cloud-storage's own retry for two minutes).
TIMEOUT = (3.0, 20.0)
RETRY = DEFAULT_RETRY.with_timeout(10.0)

#: The errors of a GCS call that mean "GCS failed" (unreachable, time-out, refusal);
#: ``requests``' errors are ``OSError``s.
GCS_ERRORS = (GoogleAPIError, GoogleAuthError, InvalidResponse, DataCorruption, OSError)


def is_missing(error: BaseException | None) -> bool:
    return isinstance(error, api_errors.NotFound)


def is_precondition_failed(error: BaseException | None) -> bool:
    return isinstance(error, api_errors.PreconditionFailed)


def unavailable(operation: str, key: str, error: Exception) -> StorageUnavailable:
    """The project's error for a failed GCS call, the library's error as its cause."""
    failure = StorageUnavailable(f"GCS {operation} of {key!r} failed: {error}")
    failure.__cause__ = error
    return failure


def make_client(settings: GCSSettings) -> storage.Client:
    """The client the settings describe, as the plugin made it: a service account's JSON
    key, else Application Default Credentials (or the emulator ``STORAGE_EMULATOR_HOST``
    names); anonymous at an explicit ``endpoint_url`` without a key."""
    options = {"api_endpoint": settings.endpoint_url} if settings.endpoint_url else None
    project = {"project": settings.project} if settings.project else {}
    try:
        if settings.credentials_path:
            return storage.Client.from_service_account_json(
                settings.credentials_path, client_options=options, **project
            )
        if settings.endpoint_url:
            return storage.Client(
                project=settings.project or "<none>",
                credentials=AnonymousCredentials(),
                client_options=options,
            )
        return storage.Client(**project)
    except (GoogleAuthError, ValueError, OSError) as error:
        raise ConfigurationError(
            f"kinto.attachment.gcloud.credentials: no usable credentials ({error})"
        ) from error


class GCSBucket:
    """What the storage and its writers share of one bucket."""

    def __init__(
        self,
        settings: GCSSettings,
        *,
        chunk_size: int = CHUNK_SIZE,
        timeout: tuple[float, float] = TIMEOUT,
        retry: Retry = RETRY,
        client: storage.Client | None = None,
    ):
        self.settings = settings
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.retry = retry
        self.client = client or make_client(settings)
        self.bucket = self.client.bucket(settings.bucket_name)
        self.name = settings.bucket_name

    def blob(self, key: str, content_type: str | None = None) -> storage.Blob:
        """A new object's properties: type, ``Cache-Control``."""
        blob = self.bucket.blob(key)
        blob.content_type = content_type
        blob.cache_control = self.settings.cache_control
        return blob

    def acl_params(self, private: bool = False) -> dict[str, str]:
        """The configured predefined ACL, ``private`` when the file is; none under
        uniform bucket-level access (IAM decides)."""
        if not self.settings.acl:
            return {}
        return {"predefined_acl": "private" if private else self.settings.acl}

    @property
    def call_params(self) -> dict:
        return {"timeout": self.timeout, "retry": self.retry}

    def get(self, key: str) -> storage.Blob | None:
        """The object's properties, ``None`` when there is no such object."""
        try:
            return self.bucket.get_blob(key, **self.call_params)
        except GCS_ERRORS as error:
            raise unavailable("get", key, error) from error

    def delete(self, key: str, **conditions) -> None:
        """Delete the object; one already gone is logged, not an error (the plugin's
        uncaught ``NotFound`` made such requests fail)."""
        try:
            self.bucket.delete_blob(key, **self.call_params, **conditions)
        except api_errors.NotFound:
            logger.info("Attachment %s was already gone from GCS bucket %s", key, self.name)
        except GCS_ERRORS as error:
            raise unavailable("delete", key, error) from error

    def write_metadata(
        self, blob: storage.Blob, metadata: StoredFileMetadata, **conditions
    ) -> None:
        """Replace the object's custom metadata (a ``PATCH``: its bytes are not copied).
        Keys no longer wanted are sent empty, which removes them."""
        wanted: dict[str, str | None] = dict(metadata.to_text())
        for name in blob.metadata or {}:
            wanted.setdefault(name, None)
        blob.metadata = wanted
        try:
            blob.patch(**self.call_params, **conditions)
        except GCS_ERRORS as error:
            raise unavailable("patch", blob.name, error) from error

    def chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, a chunk at a time."""
        try:
            with self.bucket.blob(key).open("rb", chunk_size=self.chunk_size) as source:
                while block := source.read(self.chunk_size):
                    yield block
        except GCS_ERRORS as error:
            raise unavailable("read", key, error) from error

    def blobs(self) -> Iterator[storage.Blob]:
        """Every object, page by page."""
        try:
            yield from self.client.list_blobs(self.bucket, page_size=1000, **self.call_params)
        except GCS_ERRORS as error:
            raise unavailable("list", self.name, error) from error

    def ensure_exists(self) -> None:
        """Check the bucket at start-up, creating it when ``auto_create_bucket`` says so.

        A missing bucket stops start-up; an unreachable GCS does not (the heartbeat
        reports it), as the service may come back before the first upload.
        """
        settings = self.settings
        try:
            self.client.get_bucket(self.name, **self.call_params)
            return
        except api_errors.NotFound:
            if not settings.auto_create_bucket:
                raise ConfigurationError(
                    f"kinto.attachment.gcloud.bucket_name: bucket {self.name!r} does not exist"
                    " (create it, or set kinto.attachment.gcloud.auto_create_bucket = true)"
                ) from None
        except api_errors.Forbidden as error:
            logger.warning("Cannot read GCS bucket %s's settings: %s", self.name, error)
            return
        except GCS_ERRORS as error:
            logger.error("GCS bucket %s unreachable at start-up: %s", self.name, error)
            return
        self._create()

    def _create(self) -> None:
        settings = self.settings
        bucket = self.client.bucket(self.name)
        acl = {}
        if settings.uniform_bucket_level_access:
            bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        elif settings.auto_create_acl:
            acl = {"predefined_acl": settings.auto_create_acl}
        try:
            self.client.create_bucket(bucket, **acl, **self.call_params)
        except api_errors.Conflict:
            pass  # another worker created it meanwhile
        except GCS_ERRORS as error:
            raise ConfigurationError(
                f"kinto.attachment.gcloud.auto_create_bucket: cannot create bucket"
                f" {self.name!r} ({error})"
            ) from error
        logger.info("Created GCS bucket %s", self.name)
