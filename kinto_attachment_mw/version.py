"""The installed distribution's version, as the capability and the tools report it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kinto-attachment-mw")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
