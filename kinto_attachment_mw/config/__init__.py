"""What the ini says: ``kinto.attachment.*`` (and the few Kinto settings the middleware
reads) parsed once at start-up into typed objects. Request code only ever sees
:class:`Settings` and :class:`Policy`; raw strings stop here.

A new setting: its parser in :mod:`.values` (or :mod:`.policy` when it may be given per
bucket or collection), its field on :class:`Settings` or :class:`Policy`.
"""

from .body_limits import BodyLimits
from .locks import LockSettings
from .policy import Policy
from .s3 import S3Settings
from .settings import (
    KINTO_NAMES,
    PREFIXES,
    Settings,
    from_kinto_settings,
    parse_settings,
)
from .values import ConfigurationError

__all__ = [
    "KINTO_NAMES",
    "PREFIXES",
    "BodyLimits",
    "ConfigurationError",
    "LockSettings",
    "Policy",
    "S3Settings",
    "Settings",
    "from_kinto_settings",
    "parse_settings",
]
