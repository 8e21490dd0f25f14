"""What applies to uploads in one bucket or collection (:class:`Policy`), and the parsers
of the settings that make it, which may be given globally and per resource."""

from __future__ import annotations

import difflib
import logging
import mimetypes
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..protocol import media_types
from .values import ConfigurationError, parse_bool, parse_size

logger = logging.getLogger(__name__)

EXTENSION_GROUPS: dict[str, frozenset[str]] = {
    "documents": frozenset("pdf rtf odf ods gnumeric abw doc docx xls xlsx".split()),
    "text": frozenset({"txt"}),
    "images": frozenset(["jpg", "jpe", "jpeg", "png", "gif", "svg", "bmp", "tiff"]),
    "audio": frozenset(["wav", "mp3", "aac", "ogg", "oga", "flac"]),
    "video": frozenset(["mpeg", "3gp", "avi", "divx", "dvr", "flv", "mp4", "wmv"]),
    "data": frozenset(["csv", "ini", "json", "plist", "xml", "yaml", "yml"]),
    "scripts": frozenset(["js", "php", "pl", "py", "rb", "sh"]),
    "archives": frozenset(["gz", "bz2", "zip", "tar", "tgz", "txz", "7z"]),
    "executables": frozenset(["so", "exe", "dll"]),
}
EXTENSION_GROUPS["default"] = (
    EXTENSION_GROUPS["documents"]
    | EXTENSION_GROUPS["text"]
    | EXTENSION_GROUPS["images"]
    | EXTENSION_GROUPS["data"]
)

BUILTIN_MIMETYPES = {".pem": "application/x-pem-file", ".geojson": "application/geojson"}

FOLDER_PLACEHOLDERS = frozenset({"bucket_id", "collection_id", "record_id"})
FILENAME_PLACEHOLDERS = frozenset({"filename", "datetime", "rid"})

_EXTENSION_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
#: Extensions that may be named bare in ``extensions`` (``images+pdf``): the groups' own,
#: and those of Python's built-in type table (not the machine's, so that an ini means the
#: same everywhere). Any other is best written with its dot (``.ftl``): bare, it is still
#: allowed (the plugin's ini files start unchanged) but warned about, and refused when it
#: looks like a group's typo.
KNOWN_EXTENSIONS = frozenset(
    {extension for group in EXTENSION_GROUPS.values() for extension in group}
    | {extension.lstrip(".") for extension in mimetypes.MimeTypes().types_map[True]}
    | {extension.lstrip(".") for extension in BUILTIN_MIMETYPES}
)


@dataclass(frozen=True)
class Policy:
    """What applies to uploads in one bucket or collection."""

    folder: str = ""
    randomize: bool = True
    filename_pattern: str = "{filename}"
    keep_old_files: bool = False
    extensions: frozenset[str] | None = EXTENSION_GROUPS["default"]  # None: any
    mimetypes: Mapping[str, str] = field(default_factory=lambda: dict(BUILTIN_MIMETYPES))
    max_size_bytes: int = 0  # 0: no limit
    gzipped: bool = False
    check_content: bool = True  # the first bytes must not contradict the extension
    #: Files downloaded only through the record (Kinto's read permission decides): no
    #: public ACL, not served by ``serve_path``, ``location`` the download URL.
    private: bool = False

    def allows_extension(self, extension: str) -> bool:
        return self.extensions is None or extension.lower() in self.extensions


def _parse_extensions(name: str, raw: object) -> frozenset[str] | None:
    allowed: set[str] = set()
    text = str(raw).strip()
    if not text:
        raise ConfigurationError(f"{name}: empty; use 'any' to allow every extension")
    for group in text.split("+"):
        group = group.strip().lower()
        if group == "any":
            return None
        if group in EXTENSION_GROUPS:
            allowed |= EXTENSION_GROUPS[group]
            continue
        for token in group.split():
            extension = token.lstrip(".")
            if not _EXTENSION_RE.match(extension):
                raise ConfigurationError(f"{name}: {extension!r} is not a group or an extension")
            if extension == token and extension not in KNOWN_EXTENSIONS:
                _check_unknown(name, token)
            allowed.add(extension)
    return frozenset(allowed)


def _check_unknown(name: str, token: str) -> None:
    """A bare token that is neither a group nor a known extension: a group's typo is
    refused (it would silently leave the group out); anything else is an extension, as
    the plugin reads it, so that its ini files start unchanged, with a warning."""
    groups = [*sorted(EXTENSION_GROUPS), "any"]
    hint = f"write '.{token}' to allow files named *.{token}"
    if difflib.get_close_matches(token, groups, n=1, cutoff=0.75):
        raise ConfigurationError(
            f"{name}: unknown {token!r}, neither a group ({', '.join(groups)}) nor a known "
            f"extension; {hint}"
        )
    logger.warning(
        "%s: %r is neither a group nor a known extension: files named *.%s are allowed "
        "(%s, and this warning goes)",
        name,
        token,
        token,
        hint,
    )


def _parse_mimetypes(name: str, raw: object) -> dict[str, str]:
    overrides = dict(BUILTIN_MIMETYPES)
    for item in str(raw).split(";"):
        item = item.strip()
        if not item:
            continue
        extension, sep, mimetype = item.partition(":")
        extension, parsed = extension.strip().lower(), media_types.parse(mimetype.strip())
        if not sep or not extension or parsed is None:
            raise ConfigurationError(f"{name}: expected '.ext:type/subtype', got {item!r}")
        if not extension.startswith("."):
            extension = "." + extension
        if parsed.active:
            # The operator's own choice stays (a site that serves its own pages), but
            # the type is then taken for any upload so named, whatever its bytes.
            logger.warning(
                "%s: %s files are stored as %s, a type browsers render or run",
                name,
                extension,
                parsed.essence,
            )
        overrides[extension] = parsed.normalized()
    return overrides


def _parse_pattern(name: str, raw: object, placeholders: frozenset[str]) -> str:
    pattern = str(raw).strip()
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as error:
        raise ConfigurationError(f"{name}: malformed pattern {pattern!r} ({error})") from None
    for placeholder in fields:
        if placeholder not in placeholders:
            allowed = ", ".join(f"{{{p}}}" for p in sorted(placeholders))
            raise ConfigurationError(
                f"{name}: unknown placeholder {{{placeholder}}} (allowed: {allowed})"
            )
    return pattern


def _parse_filename_pattern(name: str, raw: object) -> str:
    pattern = _parse_pattern(name, raw, FILENAME_PLACEHOLDERS)
    if not pattern:
        raise ConfigurationError(f"{name}: must not be empty")
    return pattern


#: Settings that may be given globally and per resource, with their parsers.
POLICY_PARSERS = {
    "folder": lambda name, raw: _parse_pattern(name, raw, FOLDER_PLACEHOLDERS),
    "randomize": parse_bool,
    "filename_pattern": _parse_filename_pattern,
    "keep_old_files": parse_bool,
    "gzipped": parse_bool,
    "check_content": parse_bool,
    "private": parse_bool,
    "extensions": _parse_extensions,
    "mimetypes": _parse_mimetypes,
    "max_size_bytes": parse_size,
}
