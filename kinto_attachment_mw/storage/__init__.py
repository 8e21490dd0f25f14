"""Storage backends behind one interface; :func:`storage_from_settings` picks one."""

import logging

from ..settings import Settings
from .base import FileWriter, Storage
from .local import LocalStorage

__all__ = ["FileWriter", "LocalStorage", "Storage", "storage_from_settings"]

logger = logging.getLogger(__name__)


def storage_from_settings(settings: Settings) -> Storage:
    storage = LocalStorage(settings.base_path, settings.base_url)
    storage.ensure_root()
    if settings.base_url and not settings.base_url.endswith("/"):
        logger.warning(
            "kinto.attachment.base_url %r has no trailing slash: locations start with %r",
            settings.base_url,
            storage.location_prefix,
        )
    return storage
