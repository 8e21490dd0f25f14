"""Start-up parsing of ``kinto.attachment.*`` settings into typed, validated objects.

Request code only ever sees :class:`Settings` and :class:`Policy`; raw strings stop here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .body_limits import BODY_LIMIT_NAMES, BodyLimits, parse_body_limits
from .gcs import GCLOUD_NAMES, GCSSettings, parse_gcs
from .locks import MEMORY_STORAGE, LockSettings, parse_locks
from .policy import POLICY_PARSERS, Policy
from .public_address import PublicAddress
from .resumable import ResumableSettings, parse_resumable
from .s3 import AWS_NAMES, S3Settings, parse_s3
from .values import (
    ConfigurationError,
    kinto_setting,
    parse_bool,
    parse_count,
    parse_group,
    parse_timeout,
)

PREFIXES = ("kinto.attachment.", "attachment.")

_RESOURCE_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")


@dataclass(frozen=True)
class Settings:
    """Everything the middleware needs, resolved once. Exactly one of ``base_path``
    (local storage), ``s3`` and ``gcs`` is set."""

    base_path: str = ""
    s3: S3Settings | None = None
    gcs: GCSSettings | None = None
    base_url: str = ""
    extra_base_url: str | None = None
    serve_path: str | None = None
    default_policy: Policy = Policy()
    resource_policies: Mapping[tuple[str, ...], Policy] = field(default_factory=dict)
    readonly: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    locks: LockSettings = LockSettings()
    #: Kinto keeps records in its own process memory (gc cannot see them from outside).
    kinto_in_memory: bool = True
    #: A delete that would orphan more files than this leaves them all to gc, so that
    #: its memory and time stay bounded however many lie beneath.
    max_removals_per_request: int = 10_000
    #: Longest wait for the next byte of a body the middleware reads (a stalled client).
    body_timeout_seconds: float = 60.0
    #: How long a presigned download URL (S3, GCS) serves its file.
    download_url_seconds: int = 300
    #: Local storage: an nginx ``internal`` location that serves the storage folder;
    #: checked downloads then hand the bytes to nginx (``X-Accel-Redirect``).
    download_accel_path: str | None = None
    #: Local storage: the group given read access to private files (nginx's workers).
    private_files_gid: int | None = None
    resumable: ResumableSettings = ResumableSettings()
    body_limits: BodyLimits = BodyLimits()
    public_address: PublicAddress = PublicAddress()

    def policy_for(self, bucket_id: str, collection_id: str) -> Policy:
        """The most specific policy: collection, then bucket, then global."""
        policies = self.resource_policies
        if not policies:
            return self.default_policy
        return (
            policies.get((bucket_id, collection_id))
            or policies.get((bucket_id,))
            or self.default_policy
        )


#: Settings that only make sense once, for the whole server.
GLOBAL_NAMES = frozenset(
    {
        "base_path",
        "base_url",
        "extra.base_url",
        "serve_path",
        "lock_timeout_seconds",
        "max_removals_per_request",
        "body_timeout_seconds",
        "download_url_seconds",
        "download_accel_path",
        "private_files_group",
        "resumable.enabled",
        "resumable.expires_after",
        "resumable.spool_path",
        "resumable.max_pending_uploads",
        "resumable.spool_quota_bytes",
        *BODY_LIMIT_NAMES,
    }
)


def attachment_settings(raw: Mapping[str, object]) -> dict[str, object]:
    """Pick ``kinto.attachment.NAME`` / ``attachment.NAME`` keys, keyed by their full name."""
    return {key: value for key, value in raw.items() if key.startswith(PREFIXES)}


#: Kinto's own settings the middleware reads (the storage ones choose the record locks).
KINTO_NAMES = tuple(
    "readonly cors_origins storage_backend storage_url http_scheme http_host".split()
)


def from_kinto_settings(kinto_settings: Mapping[str, object]) -> dict[str, object]:
    """The middleware's raw settings from a Kinto app's ``registry.settings``, so that they
    honour the environment as Kinto's own do (the plugin read them there too).

    Kinto keeps each ini key as written and puts its effective value under the key without
    ``kinto.``: ``KINTO_ATTACHMENT_BASE_URL`` or ``ATTACHMENT_BASE_URL`` replaces
    ``kinto.attachment.base_url``, for keys present in the ini. It also decodes values that
    read as JSON (``1e3`` becomes ``1000.0``), so the ini's own text is kept where the
    environment did not change the value: a secret that looks like a number stays as written.
    """
    from kinto.core.utils import native_value

    settings: dict[str, object] = {}
    for key, value in kinto_settings.items():
        if key.startswith(PREFIXES[1]):
            prefixed = "kinto." + key
            written = kinto_settings.get(prefixed)
            if isinstance(written, str) and native_value(written) == value:
                value = written
            settings[prefixed] = value
        elif key in KINTO_NAMES:
            settings[key] = value
    return settings


def _short_name(key: str) -> str:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    raise AssertionError(key)


def _parse_url_lifetime(raw: object) -> int:
    """Seconds a presigned URL lives: S3 and GCS sign for at most a week."""
    name = "kinto.attachment.download_url_seconds"
    seconds = parse_count(name, raw)
    if not 1 <= seconds <= 7 * 24 * 3600:
        raise ConfigurationError(f"{name}: between 1 and 604800 seconds (a week), got {seconds}")
    return seconds


def _parse_serve_path(name: str, raw: object) -> str | None:
    path = str(raw).strip().rstrip("/")
    if not path:
        return None
    if not path.startswith("/") or "//" in path:
        raise ConfigurationError(f"{name}: expected an absolute URL path like /attachments")
    return path


_BACKENDS = (
    "kinto.attachment.base_path",
    "kinto.attachment.aws.bucket_name",
    "kinto.attachment.gcloud.bucket_name",
)


def _check_one_backend(base_path: str, s3: S3Settings | None, gcs: GCSSettings | None) -> None:
    """Exactly one storage backend: a folder, an S3 bucket or a GCS bucket."""
    given = [name for name, value in zip(_BACKENDS, (base_path, s3, gcs), strict=True) if value]
    if len(given) > 1:
        raise ConfigurationError(f"{' or '.join(given)}: not both (one storage backend)")
    if not given:
        raise ConfigurationError(
            f"{', '.join(_BACKENDS[:-1])} or {_BACKENDS[-1]}: required"
            " (a folder for local storage, an S3 bucket or a Google Cloud Storage bucket)"
        )


def parse_settings(raw: Mapping[str, object]) -> Settings:
    """Validate every attachment setting of ``raw`` (an ini section or Kinto's settings)."""
    global_values: dict[str, object] = {}
    policy_values: dict[str, object] = {}
    resource_values: dict[tuple[str, ...], dict[str, object]] = {}
    aws_values: dict[str, str] = {}
    gcloud_values: dict[str, str] = {}

    for key, value in attachment_settings(raw).items():
        name = _short_name(key)
        if name in GLOBAL_NAMES:
            global_values[name] = value
        elif name.startswith("aws.") and name[4:] in AWS_NAMES:
            aws_values[name[4:]] = str(value).strip()
        elif name.startswith("gcloud.") and name[7:] in GCLOUD_NAMES:
            gcloud_values[name[7:]] = str(value).strip()
        elif name in POLICY_PARSERS:
            policy_values[name] = POLICY_PARSERS[name](key, value)
        elif name.startswith("resources."):
            *ids, setting = name[len("resources.") :].split(".")
            if len(ids) not in (1, 2) or not all(_RESOURCE_ID_RE.match(i) for i in ids):
                raise ConfigurationError(
                    f"{key}: expected resources.{{bucket}}.NAME"
                    " or resources.{bucket}.{collection}.NAME"
                )
            if setting not in POLICY_PARSERS:
                raise ConfigurationError(f"{key}: {setting!r} cannot be set per resource")
            resource_values.setdefault(tuple(ids), {})[setting] = POLICY_PARSERS[setting](
                key, value
            )
        else:
            raise ConfigurationError(f"{key}: unknown setting")

    default_policy = dataclasses.replace(Policy(), **policy_values)
    resource_policies: dict[tuple[str, ...], Policy] = {}
    for ids, values in sorted(resource_values.items(), key=lambda item: len(item[0])):
        parent = resource_policies.get(ids[:1], default_policy) if len(ids) == 2 else default_policy
        resource_policies[ids] = dataclasses.replace(parent, **values)

    base_path = str(global_values.get("base_path", "")).strip()
    s3 = parse_s3(aws_values) if aws_values else None
    gcs = parse_gcs(gcloud_values) if gcloud_values else None
    _check_one_backend(base_path, s3, gcs)
    serve_path = _parse_serve_path(
        "kinto.attachment.serve_path", global_values.get("serve_path", "")
    )
    if serve_path and (s3 or gcs):
        raise ConfigurationError(
            "kinto.attachment.serve_path: only for local storage"
            " (S3 and GCS serve their own objects)"
        )
    accel_path = _parse_serve_path(
        "kinto.attachment.download_accel_path", global_values.get("download_accel_path", "")
    )
    if accel_path and (s3 or gcs):
        raise ConfigurationError(
            "kinto.attachment.download_accel_path: only for local storage"
            " (S3 and GCS downloads are presigned URLs)"
        )
    private_group = global_values.get("private_files_group", "")
    if str(private_group).strip() and (s3 or gcs):
        raise ConfigurationError("kinto.attachment.private_files_group: only for local storage")
    base_url = str(global_values.get("base_url", "")).strip()
    extra_base_url = str(global_values.get("extra.base_url", base_url)).strip() or None
    if extra_base_url and not extra_base_url.endswith("/"):
        extra_base_url += "/"
    cors = str(kinto_setting(raw, "cors_origins", "*")).split()
    lock_timeout = parse_timeout(
        "kinto.attachment.lock_timeout_seconds", global_values.get("lock_timeout_seconds", 10)
    )
    backend = str(kinto_setting(raw, "storage_backend", MEMORY_STORAGE) or MEMORY_STORAGE)

    return Settings(
        base_path=base_path,
        s3=s3,
        gcs=gcs,
        base_url=base_url,
        extra_base_url=extra_base_url,
        serve_path=serve_path,
        default_policy=default_policy,
        resource_policies=resource_policies,
        readonly=parse_bool("kinto.readonly", kinto_setting(raw, "readonly", False)),
        cors_origins=tuple(cors) or ("*",),
        locks=parse_locks(raw, lock_timeout),
        kinto_in_memory=backend.strip() == MEMORY_STORAGE,
        body_timeout_seconds=parse_timeout(
            "kinto.attachment.body_timeout_seconds",
            global_values.get("body_timeout_seconds", 60),
        ),
        download_accel_path=accel_path,
        private_files_gid=parse_group("kinto.attachment.private_files_group", private_group),
        resumable=parse_resumable(global_values),
        body_limits=parse_body_limits(global_values),
        public_address=PublicAddress.from_settings(raw),
        download_url_seconds=_parse_url_lifetime(global_values.get("download_url_seconds", 300)),
        max_removals_per_request=parse_count(
            "kinto.attachment.max_removals_per_request",
            global_values.get("max_removals_per_request", 10_000),
        ),
    )
