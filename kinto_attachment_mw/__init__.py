"""File attachments for Kinto records, as a WSGI middleware around Kinto."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kinto-attachment-mw")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from .middleware import AttachmentMiddleware  # noqa: E402
from .paste import filter_factory  # noqa: E402

__all__ = ["AttachmentMiddleware", "__version__", "filter_factory"]
