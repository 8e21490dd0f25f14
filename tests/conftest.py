"""Fixtures shared by every tier: in-process apps, a PostgreSQL cluster, a moto server and
a fake-gcs-server for the session. Helpers live in :mod:`tests.helpers`.

Each test has exactly one tier marker: ``unit`` (in-process, seconds), ``integration``
(moto, fake-gcs-server, PostgreSQL or a gunicorn process), ``browser`` (Playwright and
Chromium) or ``e2e`` (the production set-up, nginx included); a module wholly of one tier
says so with ``pytestmark``, a mixed one marks its tests or its fixtures' params.
``make test-unit`` runs the fast tier; ``make test`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import webtest

from .helpers.gcs import FakeGCSServer, build_gcs_app, close_opened
from .helpers.kinto_apps import Uploads, build_app
from .helpers.s3 import MotoServer
from .helpers.system_packages import require

TIERS = ("unit", "integration", "browser", "e2e")
#: Fixtures that start a service: a test using one is not a unit test.
SERVICE_FIXTURES = frozenset({"moto", "fake_gcs", "postgres", "postgres_url"})


def pytest_collection_modifyitems(config, items):
    """Refuse a test without a tier, with more than one, or a unit test that starts a
    service."""
    problems = []
    for item in items:
        tiers = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        if not tiers:
            problems.append(f"{item.nodeid}: no tier, mark it one of {', '.join(TIERS)}")
        elif len(tiers) > 1:
            problems.append(f"{item.nodeid}: more than one tier ({', '.join(sorted(tiers))})")
        elif "unit" in tiers and SERVICE_FIXTURES & set(item.fixturenames):
            services = ", ".join(sorted(SERVICE_FIXTURES & set(item.fixturenames)))
            problems.append(
                f"{item.nodeid}: a unit test that starts {services}, mark it integration"
            )
    if problems:
        raise pytest.UsageError("Test tiers:\n" + "\n".join(problems))


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "attachments"
    root.mkdir()
    return root


@pytest.fixture
def app(storage_root: Path) -> webtest.TestApp:
    return build_app(storage_root)


@pytest.fixture
def uploads(app: webtest.TestApp, storage_root: Path) -> Uploads:
    return Uploads(app, storage_root)


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.unit),
        pytest.param("gcs", marks=pytest.mark.integration),
    ]
)
def storage_app(request, storage_root: Path) -> Callable[..., webtest.TestApp]:
    """Builds Kinto with the middleware (``kinto.attachment.*`` as keyword arguments) on
    local storage, then on GCS: the tests of what removes files run on both."""
    if request.param == "gcs":
        fake_gcs = request.getfixturevalue("fake_gcs")
        bucket = fake_gcs.new_bucket()
        return lambda **attachment: build_gcs_app(bucket, fake_gcs.url, **attachment)
    return lambda **attachment: build_app(storage_root, **attachment)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster for the session, removed at the end."""
    from .helpers.postgres import PostgresCluster

    require("postgresql")
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres, tmp_path: Path) -> str:
    """A fresh database with Kinto's schema."""
    return postgres.create_database(tmp_path)


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> MotoServer:
    """One moto server for the session; each test takes a bucket of its own."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def close_gcs_clients():
    """GCS clients a test made keep pooled connections: closed, not left to the GC."""
    yield
    close_opened()


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory) -> FakeGCSServer:
    """One fake-gcs-server for the session; each test takes a bucket of its own."""
    server = FakeGCSServer(tmp_path_factory.mktemp("fake-gcs") / "fake-gcs.log")
    yield server
    server.stop()
