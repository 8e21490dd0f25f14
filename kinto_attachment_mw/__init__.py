"""File attachments for Kinto records, as a WSGI middleware around Kinto.

The package map and the flow of an upload and of a delete: ``docs/architecture.rst``.
"""

from .middleware import AttachmentMiddleware
from .version import __version__
from .wsgi import filter_factory

__all__ = ["AttachmentMiddleware", "__version__", "filter_factory"]
