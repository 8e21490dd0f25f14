"""Where attachment files live: one interface (:mod:`.base`), the metadata kept beside
each file (:mod:`.metadata`), the buffers of streamed uploads (:mod:`.buffers`), local
disk, S3 and Google Cloud Storage backends; :func:`storage_from_settings`
picks one. A new backend is a module (or a subpackage) here that subclasses
:class:`Storage` and passes the contract tests."""

import logging

from ..config import ConfigurationError, Settings
from .base import FileWriter, Storage, StorageUnavailable, StoredFileInfo
from .local import LocalStorage
from .metadata import StoredFileMetadata

__all__ = [
    "FileWriter",
    "LocalStorage",
    "Storage",
    "StorageUnavailable",
    "StoredFileInfo",
    "StoredFileMetadata",
    "storage_from_settings",
]

logger = logging.getLogger(__name__)


def storage_from_settings(settings: Settings) -> Storage:
    """Local storage under ``base_path``, S3 when ``aws.bucket_name`` is set, GCS when
    ``gcloud.bucket_name`` is (its bucket checked, or created, now)."""
    if settings.gcs is not None:
        try:
            from .gcs import GCSStorage
        except ImportError as error:  # google-cloud-storage is an optional dependency
            raise ConfigurationError(
                "kinto.attachment.gcloud.bucket_name: Google Cloud Storage needs"
                f" google-cloud-storage ({error}); install kinto-attachment-mw[gcs]"
            ) from error
        gcs = GCSStorage(settings.gcs, settings.base_url)
        gcs.ensure_bucket()
        storage: Storage = gcs
    elif settings.s3 is not None:
        try:
            from .s3 import S3Storage
        except ImportError as error:  # boto3 is an optional dependency
            raise ConfigurationError(
                f"kinto.attachment.aws.bucket_name: S3 storage needs boto3 ({error});"
                " install kinto-attachment-mw[s3]"
            ) from error
        storage = S3Storage(settings.s3, settings.base_url)
    else:
        storage = LocalStorage(settings.base_path, settings.base_url, settings.private_files_gid)
        storage.ensure_root()
    if settings.base_url and not settings.base_url.endswith("/"):
        logger.warning(
            "kinto.attachment.base_url %r has no trailing slash: locations start with %r",
            settings.base_url,
            storage.location_prefix,
        )
    return storage
