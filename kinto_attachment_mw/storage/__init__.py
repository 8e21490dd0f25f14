"""Storage backends behind one interface; :func:`storage_from_settings` picks one."""

from ..settings import Settings
from .base import FileWriter, Storage
from .local import LocalStorage

__all__ = ["FileWriter", "LocalStorage", "Storage", "storage_from_settings"]


def storage_from_settings(settings: Settings) -> Storage:
    storage = LocalStorage(settings.base_path, settings.base_url)
    storage.ensure_root()
    return storage
