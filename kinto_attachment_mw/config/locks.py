"""Where per-record locks live, chosen from Kinto's own storage settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .values import ConfigurationError, kinto_setting

POSTGRESQL_STORAGE = "kinto.core.storage.postgresql"
MEMORY_STORAGE = "kinto.core.storage.memory"


@dataclass(frozen=True)
class LockSettings:
    """Where per-record locks live, from Kinto's own storage settings.

    ``postgresql_url`` is Kinto's database when Kinto stores records in PostgreSQL (several
    processes or hosts share it); ``None`` means one process, so in-process locks.
    """

    postgresql_url: str | None = None
    timeout_seconds: float = 10.0


def parse_locks(raw: Mapping[str, object], timeout: float) -> LockSettings:
    """PostgreSQL advisory locks on Kinto's database when Kinto uses PostgreSQL."""
    backend = str(kinto_setting(raw, "storage_backend", MEMORY_STORAGE) or "").strip()
    if backend != POSTGRESQL_STORAGE:
        return LockSettings(None, timeout)
    url = str(kinto_setting(raw, "storage_url", "") or "").strip()
    if not url:
        raise ConfigurationError("kinto.storage_url: required with the PostgreSQL storage backend")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ConfigurationError(f"kinto.storage_url: expected postgresql://..., got {url!r}")
    # SQLAlchemy's "postgresql+psycopg2://" names a driver; libpq only knows the scheme.
    return LockSettings("postgresql://" + rest, timeout)
