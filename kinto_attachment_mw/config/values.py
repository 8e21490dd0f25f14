"""Typed values from the strings of an ini file, each refused with the setting's name."""

from __future__ import annotations

import os
from collections.abc import Mapping

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


class ConfigurationError(ValueError):
    """A setting is unknown or malformed; start-up must stop."""


def parse_bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}: expected true or false, got {raw!r}")


def parse_size(name: str, raw: object) -> int:
    return _non_negative(name, raw, "a number of bytes")


def parse_count(name: str, raw: object) -> int:
    return _non_negative(name, raw, "a whole number")


def _non_negative(name: str, raw: object, expected: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigurationError(f"{name}: expected {expected}, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name}: must not be negative, got {value}")
    return value


def parse_timeout(name: str, raw: object) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ConfigurationError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if not 0 < value < float("inf"):
        raise ConfigurationError(f"{name}: must be a positive number of seconds, got {raw!r}")
    return value


def kinto_setting(raw: Mapping[str, object], name: str, default: object) -> object:
    """One of Kinto's own settings, given as ``kinto.NAME`` or ``NAME``."""
    for key in (f"kinto.{name}", name):
        if key in raw:
            return raw[key]
    return default


def parse_group(name: str, raw: object) -> int | None:
    """A group of this host, by name or number, that the server's user is in (it gives
    files to it); ``None`` when empty."""
    import grp

    value = str(raw).strip()
    if not value:
        return None
    try:
        gid = int(value) if value.isdigit() else grp.getgrnam(value).gr_gid
    except KeyError:
        raise ConfigurationError(f"{name}: no group {value!r} on this host") from None
    if os.geteuid() != 0 and gid not in (os.getegid(), *os.getgroups()):
        raise ConfigurationError(f"{name}: this server's user is not in group {value!r}")
    return gid
