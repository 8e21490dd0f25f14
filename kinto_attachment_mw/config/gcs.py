"""``kinto.attachment.gcloud.*``: where and how to reach the Google Cloud Storage bucket,
as the kinto-attachment plugin (8.x, 9.x) reads them.

Booleans are read as Kinto reads them (``true``/``false``, ``yes``/``no``, ``on``/``off``,
``1``/``0``); the plugin tested the raw strings, so that ``false`` enabled
``auto_create_bucket`` there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .values import ConfigurationError, parse_bool

#: Predefined object ACLs (``gcloud.acl``), as GCS names them.
OBJECT_ACLS = frozenset(
    "authenticatedRead bucketOwnerFullControl bucketOwnerRead private projectPrivate"
    " publicRead".split()
)
#: Predefined bucket ACLs (``gcloud.auto_create_acl``).
BUCKET_ACLS = frozenset(
    "authenticatedRead private projectPrivate publicRead publicReadWrite".split()
)

#: The plugin's defaults, when uniform bucket-level access is off.
DEFAULT_OBJECT_ACL = "publicRead"
DEFAULT_BUCKET_ACL = "projectPrivate"


@dataclass(frozen=True)
class GCSSettings:
    """Where and how to reach the bucket; ``None`` fields defer to google-cloud-storage
    (Application Default Credentials, the project they name, Google's endpoint, or the
    emulator ``STORAGE_EMULATOR_HOST`` names)."""

    bucket_name: str
    credentials_path: str | None = None
    project: str | None = None
    #: The predefined ACL of each object; ``None`` under uniform bucket-level access.
    acl: str | None = DEFAULT_OBJECT_ACL
    cache_control: str | None = None
    uniform_bucket_level_access: bool = False
    auto_create_bucket: bool = False
    #: The predefined ACL of a bucket created here; ``None`` under uniform access.
    auto_create_acl: str | None = DEFAULT_BUCKET_ACL
    #: An explicit API endpoint (an emulator); credentials are then anonymous unless
    #: ``credentials_path`` is given.
    endpoint_url: str | None = None


#: ``gcloud.*`` settings: the plugin's, and ``endpoint_url``.
GCLOUD_NAMES = frozenset(
    "credentials project bucket_name acl cache_control uniform_bucket_level_access"
    " auto_create_bucket auto_create_acl endpoint_url".split()
)


def _name(short: str) -> str:
    return f"kinto.attachment.gcloud.{short}"


def _acl(values: Mapping[str, str], short: str, known: frozenset[str]) -> str | None:
    acl = values.get(short) or None
    if acl is not None and acl not in known:
        raise ConfigurationError(
            f"{_name(short)}: {acl!r} is not a predefined ACL ({', '.join(sorted(known))})"
        )
    return acl


def parse_gcs(values: Mapping[str, str]) -> GCSSettings:
    """``gcloud.*`` into :class:`GCSSettings`, with the plugin's defaults."""
    bucket_name = values.get("bucket_name", "")
    if not bucket_name:
        raise ConfigurationError(f"{_name('bucket_name')}: required with any gcloud.* setting")
    credentials = values.get("credentials") or None
    if credentials is not None and not os.path.isfile(credentials):
        raise ConfigurationError(
            f"{_name('credentials')}: {credentials!r} is not a file (a service account's"
            " JSON key; leave it empty for Application Default Credentials)"
        )
    uniform = parse_bool(
        _name("uniform_bucket_level_access"), values.get("uniform_bucket_level_access", "")
    )
    acl = _acl(values, "acl", OBJECT_ACLS)
    bucket_acl = _acl(values, "auto_create_acl", BUCKET_ACLS)
    if uniform and (acl or bucket_acl):
        raise ConfigurationError(
            f"{_name('acl')}, {_name('auto_create_acl')}: leave them unset with"
            " uniform_bucket_level_access (the bucket's IAM policy decides who reads)"
        )
    endpoint_url = values.get("endpoint_url") or None
    if endpoint_url is not None and not re.match(r"^https?://[^/\s]+/?$", endpoint_url):
        raise ConfigurationError(f"{_name('endpoint_url')}: expected http(s)://host[:port]")
    return GCSSettings(
        bucket_name=bucket_name,
        credentials_path=credentials,
        project=values.get("project") or None,
        acl=None if uniform else acl or DEFAULT_OBJECT_ACL,
        cache_control=values.get("cache_control") or None,
        uniform_bucket_level_access=uniform,
        auto_create_bucket=parse_bool(
            _name("auto_create_bucket"), values.get("auto_create_bucket", "")
        ),
        auto_create_acl=None if uniform else bucket_acl or DEFAULT_BUCKET_ACL,
        endpoint_url=endpoint_url.rstrip("/") if endpoint_url else None,
    )
