"""Settings are parsed once into typed objects; anything unknown or malformed stops start-up."""

from __future__ import annotations

import logging

import pytest

from kinto_attachment_mw.config import ConfigurationError, S3Settings, parse_settings
from kinto_attachment_mw.config.policy import EXTENSION_GROUPS

pytestmark = pytest.mark.unit

BASE = {"kinto.attachment.base_path": "/tmp/files"}


def parse(**values: str):
    return parse_settings({**BASE, **{f"kinto.attachment.{k}": v for k, v in values.items()}})


def test_defaults_match_the_plugin():
    settings = parse()
    policy = settings.default_policy
    assert settings.base_url == ""
    assert settings.extra_base_url is None
    assert policy.randomize is True
    assert policy.keep_old_files is False
    assert policy.folder == ""
    assert policy.filename_pattern == "{filename}"
    assert policy.max_size_bytes == 0
    assert policy.extensions == EXTENSION_GROUPS["default"]
    assert policy.mimetypes[".pem"] == "application/x-pem-file"
    assert policy.mimetypes[".geojson"] == "application/geojson"


def test_values_are_typed():
    settings = parse(
        randomize="false",
        keep_old_files="On",
        max_size_bytes="1048576",
        extensions="images+pdf+.ftl",
        mimetypes=".ftl:application/vnd.fluent;.db:application/vnd.sqlite3",
        base_url="https://cdn.example.com/files",
    )
    policy = settings.default_policy
    assert policy.randomize is False
    assert policy.keep_old_files is True
    assert policy.max_size_bytes == 1048576
    assert {"png", "pdf", "ftl"} <= policy.extensions and "txt" not in policy.extensions
    assert policy.mimetypes[".ftl"] == "application/vnd.fluent"
    assert policy.mimetypes[".db"] == "application/vnd.sqlite3"
    assert settings.extra_base_url == "https://cdn.example.com/files/"


def test_extensions_any_allows_everything():
    assert parse(extensions="any").default_policy.extensions is None
    assert parse(extensions="any").default_policy.allows_extension("exe")


def test_short_prefix_of_paste_filter_sections_is_accepted():
    settings = parse_settings({"attachment.base_path": "/x", "attachment.randomize": "false"})
    assert settings.base_path == "/x"
    assert settings.default_policy.randomize is False


def test_per_resource_settings_most_specific_wins():
    settings = parse(
        max_size_bytes="10",
        **{
            "resources.b.max_size_bytes": "20",
            "resources.b.randomize": "false",
            "resources.b.c.max_size_bytes": "30",
            "resources.other.c.keep_old_files": "true",
        },
    )
    assert settings.policy_for("x", "y").max_size_bytes == 10
    assert settings.policy_for("b", "y").max_size_bytes == 20
    collection = settings.policy_for("b", "c")
    assert collection.max_size_bytes == 30
    assert collection.randomize is False  # inherited from the bucket
    assert settings.policy_for("other", "c").keep_old_files is True
    assert settings.policy_for("other", "d").keep_old_files is False


def test_kinto_settings_read_alongside():
    settings = parse_settings({**BASE, "kinto.readonly": "true", "kinto.cors_origins": "a b"})
    assert settings.readonly is True
    assert settings.cors_origins == ("a", "b")


@pytest.mark.parametrize(
    "key,value,fragment",
    [
        ("randomize", "maybe", "kinto.attachment.randomize: expected true or false"),
        ("keep_old_files", "2", "kinto.attachment.keep_old_files"),
        ("max_size_bytes", "10MB", "kinto.attachment.max_size_bytes: expected a number"),
        ("max_size_bytes", "-1", "must not be negative"),
        ("extensions", "images+.../", "kinto.attachment.extensions"),
        ("extensions", "", "kinto.attachment.extensions: empty"),
        (
            "extensions",
            "images+documnts",
            "kinto.attachment.extensions: unknown 'documnts', neither a group (archives, "
            "audio, data, default, documents, executables, images, scripts, text, video, any) "
            "nor a known extension; write '.documnts' to allow files named *.documnts",
        ),
        ("extensions", "imags", "kinto.attachment.extensions: unknown 'imags'"),
        ("mimetypes", ".ftl=application/x", "kinto.attachment.mimetypes"),
        ("folder", "{bucket}", "kinto.attachment.folder: unknown placeholder {bucket}"),
        ("folder", "{bucket_id", "kinto.attachment.folder: malformed pattern"),
        ("filename_pattern", "{name}", "kinto.attachment.filename_pattern: unknown placeholder"),
        ("filename_pattern", "", "kinto.attachment.filename_pattern: must not be empty"),
        ("randomise", "true", "kinto.attachment.randomise: unknown setting"),
        ("resources.b.base_url", "x", "'base_url' cannot be set per resource"),
        ("resources.b.c.d.randomize", "true", "kinto.attachment.resources.b.c.d.randomize"),
        ("resources.b..randomize", "true", "kinto.attachment.resources.b..randomize"),
        ("resources.b.colour", "true", "'colour' cannot be set per resource"),
        ("serve_path", "attachments", "kinto.attachment.serve_path"),
        ("gzipped", "maybe", "kinto.attachment.gzipped: expected true or false"),
        ("aws.bucket_name", "files", "base_path or kinto.attachment.aws.bucket_name: not both"),
        ("aws.bucket", "files", "kinto.attachment.aws.bucket: unknown setting"),
        ("gcloud.bucket_name", "files", "base_path or kinto.attachment.gcloud.bucket_name: not"),
        ("gcloud.bucket", "files", "kinto.attachment.gcloud.bucket: unknown setting"),
        ("resources.b.aws.acl", "public-read", "'acl' cannot be set per resource"),
        ("download_accel_path", "protected", "kinto.attachment.download_accel_path"),
        ("download_url_seconds", "0", "between 1 and 604800 seconds"),
    ],
)
def test_malformed_or_unknown_setting_names_itself(key, value, fragment):
    with pytest.raises(ConfigurationError) as raised:
        parse(**{key: value})
    assert fragment in str(raised.value)


def test_an_unknown_bare_extension_is_allowed_as_the_plugin_reads_it_with_a_warning(caplog):
    """A plugin ini such as ``default+bin+ftl`` starts unchanged; only a group's typo stops
    start-up (above)."""
    with caplog.at_level(logging.WARNING, logger="kinto_attachment_mw.config.policy"):
        policy = parse(extensions="images+pdff+ftl").policy_for("b", "c")
    assert {"pdff", "ftl", "png"} <= policy.extensions
    warned = [record.getMessage() for record in caplog.records]
    assert any("'pdff' is neither a group nor a known extension" in line for line in warned)
    assert any("write '.ftl' to allow files named *.ftl" in line for line in warned)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kinto_attachment_mw.config.policy"):
        parse(extensions="images+.pdff")
    assert not caplog.records


def test_base_path_is_required():
    with pytest.raises(ConfigurationError, match="kinto.attachment.base_path"):
        parse_settings({"kinto.attachment.randomize": "true"})


def test_gzipped_globally_and_per_resource():
    settings = parse(gzipped="true", **{"resources.b.c.gzipped": "false"})
    assert settings.policy_for("x", "y").gzipped is True
    assert settings.policy_for("b", "c").gzipped is False
    assert settings.policy_for("b", "d").gzipped is True
    assert parse().default_policy.gzipped is False


AWS = "kinto.attachment.aws."


def parse_aws(**values: str):
    return parse_settings({AWS + name: value for name, value in values.items()})


def test_s3_settings_are_typed():
    settings = parse_aws(
        bucket_name="files",
        access_key="AKIA",
        secret_key="s3cr3t",
        acl="public-read",
        endpoint_url="http://127.0.0.1:9000",
        region="eu-west-1",
    )
    assert settings.base_path == ""
    assert settings.s3 == S3Settings(
        bucket_name="files",
        access_key="AKIA",
        secret_key="s3cr3t",
        acl="public-read",
        endpoint_url="http://127.0.0.1:9000",
        region="eu-west-1",
        addressing_style="auto",
    )


def test_older_plugin_timeout_and_retries_are_kept():
    s3 = parse_aws(bucket_name="files", timeout="5", num_retries="1").s3
    assert (s3.timeout_seconds, s3.num_retries) == (5.0, 1)


def test_s3_credentials_default_to_boto3s_chain():
    s3 = parse_aws(bucket_name="files").s3
    assert (s3.access_key, s3.secret_key, s3.acl, s3.endpoint_url) == (None, None, None, None)


@pytest.mark.parametrize(
    "legacy,endpoint,style",
    [
        (
            {"host": "minio.local", "port": "9000", "is_secure": "false"},
            "http://minio.local:9000",
            "auto",
        ),
        (
            {"host": "ceph.example.com", "use_path_style": "true"},
            "https://ceph.example.com",
            "path",
        ),
        ({"is_secure": "false"}, "http://s3.amazonaws.com", "auto"),
        ({"port": "8443"}, "https://s3.amazonaws.com:8443", "auto"),
        ({"use_path_style": "true"}, None, "path"),
        ({"host": "http://minio.local", "port": "9000"}, "http://minio.local:9000", "auto"),
        ({"host": "minio_1", "is_secure": "false"}, "http://minio_1", "auto"),
    ],
)
def test_older_plugin_endpoint_settings_are_mapped(legacy, endpoint, style):
    s3 = parse_aws(bucket_name="files", **legacy).s3
    assert (s3.endpoint_url, s3.addressing_style) == (endpoint, style)


@pytest.mark.parametrize(
    "values,fragment",
    [
        ({}, "aws.bucket_name or kinto.attachment.gcloud.bucket_name: required"),
        ({"acl": "private"}, "aws.bucket_name: required with any aws.* setting"),
        ({"bucket_name": "f", "access_key": "AKIA"}, "give both, or neither"),
        ({"bucket_name": "f", "secret_key": "x"}, "give both, or neither"),
        ({"bucket_name": "f", "acl": "public"}, "aws.acl: 'public' is not a canned ACL"),
        ({"bucket_name": "f", "endpoint_url": "minio:9000"}, "aws.endpoint_url: expected"),
        ({"bucket_name": "f", "endpoint_url": "http://a", "host": "b"}, "not with"),
        ({"bucket_name": "f", "port": "http"}, "aws.port: expected a port number"),
        ({"bucket_name": "f", "host": "a/b"}, "aws.host: expected a host name"),
        ({"bucket_name": "f", "is_secure": "sometimes"}, "aws.is_secure: expected true"),
        ({"bucket_name": "f", "use_path_style": "2"}, "aws.use_path_style: expected true"),
        ({"bucket_name": "f", "timeout": "soon"}, "aws.timeout: expected a number of seconds"),
        ({"bucket_name": "f", "timeout": "0"}, "aws.timeout: expected a number of seconds"),
        ({"bucket_name": "f", "num_retries": "-1"}, "aws.num_retries: must not be negative"),
    ],
)
def test_bad_s3_settings_name_themselves(values, fragment):
    with pytest.raises(ConfigurationError) as raised:
        parse_aws(**values)
    assert fragment in str(raised.value)


def test_serve_path_is_for_local_storage_only():
    with pytest.raises(ConfigurationError, match="serve_path: only for local storage"):
        parse_settings({AWS + "bucket_name": "f", "kinto.attachment.serve_path": "/files"})


def test_middleware_refuses_to_start_on_bad_settings(tmp_path):
    from ..helpers.kinto_apps import build_app

    with pytest.raises(ConfigurationError, match="kinto.attachment.max_size_bytes"):
        build_app(tmp_path, max_size_bytes="lots")


def test_record_locks_follow_kintos_storage_backend():
    memory = parse_settings({**BASE, "kinto.storage_backend": "kinto.core.storage.memory"})
    assert memory.locks.postgresql_url is None
    assert memory.kinto_in_memory is True
    pg = parse_settings(
        {
            **BASE,
            "storage_backend": "kinto.core.storage.postgresql",
            "storage_url": "postgresql+psycopg2://kinto@db:5432/kinto",
            "kinto.attachment.lock_timeout_seconds": "2.5",
        }
    )
    assert pg.locks.postgresql_url == "postgresql://kinto@db:5432/kinto"
    assert pg.locks.timeout_seconds == 2.5
    assert pg.kinto_in_memory is False


@pytest.mark.parametrize(
    "values, message",
    [
        pytest.param(
            {"kinto.storage_backend": "kinto.core.storage.postgresql"},
            "kinto.storage_url: required",
            id="no-url",
        ),
        pytest.param(
            {
                "kinto.storage_backend": "kinto.core.storage.postgresql",
                "kinto.storage_url": "mysql://db/kinto",
            },
            "expected postgresql://",
            id="not-postgresql",
        ),
        pytest.param({"kinto.attachment.lock_timeout_seconds": "0"}, "positive", id="zero-timeout"),
        pytest.param(
            {"kinto.attachment.lock_timeout_seconds": "soon"}, "number of seconds", id="words"
        ),
    ],
)
def test_bad_lock_settings_stop_start_up(values, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_settings({**BASE, **values})
