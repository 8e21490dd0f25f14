"""A server per test module: Kinto wrapped by the middleware under gunicorn, started
with ``KINTO_INI`` as users run it, with alice's collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..helpers.live_server import Kinto, running_kinto


@pytest.fixture(scope="module")
def main_server(tmp_path_factory) -> Iterator[tuple[Kinto, Path]]:
    yield from running_kinto(tmp_path_factory.mktemp("main"))


@pytest.fixture
def kinto(main_server) -> Kinto:
    return main_server[0]


@pytest.fixture
def root(main_server) -> Path:
    return main_server[1]
