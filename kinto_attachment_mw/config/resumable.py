"""Settings of resumable uploads (``kinto.attachment.resumable.*``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from .values import ConfigurationError, parse_bool, parse_count, parse_size, parse_timeout


@dataclass(frozen=True)
class ResumableSettings:
    """tus uploads (:mod:`..resumable`): on or off, how long an unfinished one lives, and
    the folder that holds them until they complete (every worker that may continue an
    upload must see it: one host, any folder; several hosts, a shared one)."""

    enabled: bool = True
    expires_after_seconds: float = 24 * 3600.0
    spool_path: str = os.path.join(tempfile.gettempdir(), "kinto-attachment-resumable")
    #: Unfinished uploads one principal may hold at once (429 beyond).
    max_pending_uploads: int = 20
    #: Bytes all unfinished uploads may hold in the spool together (0: no limit).
    spool_quota_bytes: int = 10 * 1024**3


def parse_resumable(values: Mapping[str, object]) -> ResumableSettings:
    default = ResumableSettings()
    prefix = "kinto.attachment.resumable."
    spool = str(values.get("resumable.spool_path", "") or "").strip() or default.spool_path
    if not os.path.isabs(spool):
        raise ConfigurationError(f"{prefix}spool_path: an absolute folder, got {spool!r}")
    return ResumableSettings(
        enabled=parse_bool(f"{prefix}enabled", values.get("resumable.enabled", True)),
        expires_after_seconds=parse_timeout(
            f"{prefix}expires_after", values.get("resumable.expires_after", 24 * 3600)
        ),
        spool_path=spool,
        max_pending_uploads=parse_count(
            f"{prefix}max_pending_uploads",
            values.get("resumable.max_pending_uploads", default.max_pending_uploads),
        ),
        spool_quota_bytes=parse_size(
            f"{prefix}spool_quota_bytes",
            values.get("resumable.spool_quota_bytes", default.spool_quota_bytes),
        ),
    )
