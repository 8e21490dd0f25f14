"""``kinto.attachment.aws.*``: where and how to reach the S3 bucket, the older plugin's
endpoint settings included."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .values import ConfigurationError, parse_bool, parse_size

#: Canned ACLs S3 knows (``aws.acl``).
CANNED_ACLS = frozenset(
    "private public-read public-read-write authenticated-read aws-exec-read"
    " bucket-owner-read bucket-owner-full-control".split()
)


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach the S3 bucket; ``None`` fields defer to boto3's own defaults
    (credential chain, region from the environment, AWS endpoints)."""

    bucket_name: str
    access_key: str | None = None
    secret_key: str | None = None
    acl: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"  # "path" for the older plugin's use_path_style
    timeout_seconds: float | None = None  # connect and read; None: the backend's default
    num_retries: int | None = None  # None: the backend's default


#: ``aws.*`` settings; ``host``, ``port``, ``is_secure`` and ``use_path_style`` are the
#: older plugin's, mapped onto an endpoint URL and an addressing style.
AWS_NAMES = frozenset(
    "access_key secret_key bucket_name acl endpoint_url region timeout num_retries"
    " host port is_secure use_path_style".split()
)


def parse_s3(values: Mapping[str, str]) -> S3Settings:
    """``aws.*`` into :class:`S3Settings`; the older plugin's ``host``, ``port``,
    ``is_secure`` and ``use_path_style`` become an endpoint URL and an addressing style."""

    def name(short: str) -> str:
        return f"kinto.attachment.aws.{short}"

    bucket_name = values.get("bucket_name", "")
    if not bucket_name:
        raise ConfigurationError(f"{name('bucket_name')}: required with any aws.* setting")
    access_key = values.get("access_key") or None
    secret_key = values.get("secret_key") or None
    if bool(access_key) != bool(secret_key):
        raise ConfigurationError(
            f"{name('access_key')}, {name('secret_key')}: give both, or neither"
            " (boto3's credential chain, IAM roles included)"
        )
    acl = values.get("acl") or None
    if acl is not None and acl not in CANNED_ACLS:
        raise ConfigurationError(
            f"{name('acl')}: {acl!r} is not a canned ACL ({', '.join(sorted(CANNED_ACLS))})"
        )
    endpoint_url = values.get("endpoint_url") or None
    if endpoint_url is not None and not re.match(r"^https?://[^/\s]+", endpoint_url):
        raise ConfigurationError(f"{name('endpoint_url')}: expected http(s)://host[:port]")
    legacy = {key: values[key] for key in ("host", "port", "is_secure") if values.get(key)}
    if legacy:
        if endpoint_url is not None:
            raise ConfigurationError(
                f"{name('endpoint_url')}: not with {', '.join(name(k) for k in legacy)}"
            )
        endpoint_url = _legacy_endpoint(name, legacy)
    path_style = parse_bool(name("use_path_style"), values.get("use_path_style", ""))
    timeout = num_retries = None
    if values.get("timeout"):
        try:
            timeout = float(values["timeout"])
        except ValueError:
            timeout = 0
        if not 0 < timeout < 3600:
            raise ConfigurationError(f"{name('timeout')}: expected a number of seconds")
    if values.get("num_retries"):
        num_retries = parse_size(name("num_retries"), values["num_retries"])
    return S3Settings(
        bucket_name=bucket_name,
        access_key=access_key,
        secret_key=secret_key,
        acl=acl,
        endpoint_url=endpoint_url,
        region=values.get("region") or None,
        addressing_style="path" if path_style else "auto",
        timeout_seconds=timeout,
        num_retries=num_retries,
    )


def _legacy_endpoint(name, legacy: Mapping[str, str]) -> str:
    """The endpoint the older plugin (boto 2) reached: HTTPS unless ``is_secure`` is
    false, ``s3.amazonaws.com`` unless ``host`` says otherwise."""
    secure = parse_bool(name("is_secure"), legacy.get("is_secure", "true"))
    host = legacy.get("host", "s3.amazonaws.com")
    scheme, separator, rest = host.partition("://")
    if separator:  # the older plugin also took "http://minio.local" as a host
        if scheme.lower() not in ("http", "https"):
            raise ConfigurationError(f"{name('host')}: expected http or https, got {host!r}")
        secure, host = scheme.lower() == "https", rest.rstrip("/")
    if not re.match(r"^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$", host):
        raise ConfigurationError(f"{name('host')}: expected a host name, got {host!r}")
    port = ""
    if "port" in legacy:
        if not legacy["port"].isdigit() or not 0 < int(legacy["port"]) < 65536:
            raise ConfigurationError(f"{name('port')}: expected a port number")
        port = f":{int(legacy['port'])}"
    return f"{'https' if secure else 'http'}://{host}{port}"
