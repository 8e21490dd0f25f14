"""``kinto.attachment.gcloud.*``: the plugin 9.0.1's settings, its defaults, and one-line
errors at start-up for what it would have accepted and failed on later."""

from __future__ import annotations

import pytest

from kinto_attachment_mw.config import ConfigurationError, parse_settings
from kinto_attachment_mw.config.gcs import GCSSettings

pytestmark = pytest.mark.unit

GCLOUD = "kinto.attachment.gcloud."


def parse_gcloud(**values: str):
    return parse_settings({GCLOUD + name: value for name, value in values.items()})


def test_plugin_defaults():
    """An empty ``credentials`` is Application Default Credentials; objects are
    ``publicRead`` and a bucket created here ``projectPrivate``, as in the plugin."""
    settings = parse_gcloud(credentials="", bucket_name="files")
    assert settings.gcs == GCSSettings(bucket_name="files")
    assert settings.gcs.acl == "publicRead"
    assert settings.gcs.auto_create_acl == "projectPrivate"
    assert settings.base_path == ""
    assert settings.s3 is None


def test_settings_are_typed(tmp_path):
    key = tmp_path / "service-account.json"
    key.write_text("{}")
    gcs = parse_gcloud(
        credentials=str(key),
        project="my-project",
        bucket_name="files",
        acl="projectPrivate",
        cache_control="public, max-age=3600",
        auto_create_bucket="yes",
        auto_create_acl="private",
        endpoint_url="http://127.0.0.1:4443/",
    ).gcs
    assert gcs == GCSSettings(
        bucket_name="files",
        credentials_path=str(key),
        project="my-project",
        acl="projectPrivate",
        cache_control="public, max-age=3600",
        auto_create_bucket=True,
        auto_create_acl="private",
        endpoint_url="http://127.0.0.1:4443",
    )


@pytest.mark.parametrize("value", ["false", "False", "no", "off", "0", ""])
def test_booleans_read_as_kinto_reads_them(value):
    """The plugin tested the raw string: ``false`` created buckets there."""
    gcs = parse_gcloud(bucket_name="f", auto_create_bucket=value).gcs
    assert gcs.auto_create_bucket is False


def test_uniform_bucket_level_access_sets_no_acl():
    gcs = parse_gcloud(bucket_name="f", uniform_bucket_level_access="true").gcs
    assert gcs.uniform_bucket_level_access is True
    assert (gcs.acl, gcs.auto_create_acl) == (None, None)


@pytest.mark.parametrize(
    "values,fragment",
    [
        ({"credentials": ""}, "gcloud.bucket_name: required with any gcloud.* setting"),
        ({"bucket_name": "f", "credentials": "/nowhere.json"}, "gcloud.credentials: '/nowhere"),
        ({"bucket_name": "f", "acl": "public-read"}, "gcloud.acl: 'public-read' is not a"),
        ({"bucket_name": "f", "auto_create_acl": "bucketOwnerRead"}, "gcloud.auto_create_acl"),
        (
            {"bucket_name": "f", "acl": "publicRead", "uniform_bucket_level_access": "true"},
            "leave them unset with uniform_bucket_level_access",
        ),
        ({"bucket_name": "f", "uniform_bucket_level_access": "2"}, "expected true or false"),
        ({"bucket_name": "f", "auto_create_bucket": "maybe"}, "gcloud.auto_create_bucket"),
        ({"bucket_name": "f", "endpoint_url": "localhost:4443"}, "gcloud.endpoint_url: expected"),
        ({"bucket_name": "f", "bucket": "g"}, "kinto.attachment.gcloud.bucket: unknown setting"),
    ],
)
def test_bad_gcs_settings_name_themselves(values, fragment):
    with pytest.raises(ConfigurationError) as raised:
        parse_gcloud(**values)
    assert fragment in str(raised.value)


def test_one_storage_backend_only():
    with pytest.raises(ConfigurationError, match="aws.bucket_name or .*gcloud.bucket_name: not"):
        parse_settings({GCLOUD + "bucket_name": "f", "kinto.attachment.aws.bucket_name": "g"})
    with pytest.raises(ConfigurationError, match="serve_path: only for local storage"):
        parse_settings({GCLOUD + "bucket_name": "f", "kinto.attachment.serve_path": "/files"})
