"""``make test`` on a machine without a Debian package the tests need: the script says
what to install, and the tests that need it are skipped with the same line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .helpers.system_packages import TABLE, require, system_packages

pytestmark = pytest.mark.unit

SCRIPT = TABLE.parent / "system-packages"


def run_script(table: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYSTEM_PACKAGES_TABLE": str(table), "SYSTEM_PACKAGES_INSTALL": "no"}
    return subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)


def test_a_missing_package_is_one_line_and_the_skip_reason(tmp_path):
    table = tmp_path / "table.txt"
    table.write_text(
        "# comment\n"
        f"here|{TABLE}|coreutils|nothing\n"
        "gone|/nonexistent/*/bin/tool|tool-pkg extra-pkg|the tool's tests\n"
    )
    done = run_script(table)
    assert done.returncode == 0
    gone = system_packages(table)["gone"]
    assert done.stderr.splitlines() == [f"{gone.missing_reason}; those tests are skipped"]
    assert gone.missing_reason == (
        "missing system package: apt-get install tool-pkg extra-pkg (as root), for the tool's tests"
    )
    assert system_packages(table)["here"].installed


def test_nothing_is_said_when_everything_is_installed(tmp_path):
    table = tmp_path / "table.txt"
    table.write_text(f"here|{TABLE}|coreutils|nothing\n")
    assert run_script(table).stderr == ""


def test_require_skips_with_the_reason(monkeypatch, tmp_path):
    table = tmp_path / "table.txt"
    table.write_text("gone|/nonexistent|tool-pkg|the tool's tests\n")
    monkeypatch.setattr("tests.helpers.system_packages.TABLE", table)
    with pytest.raises(pytest.skip.Exception, match="apt-get install tool-pkg"):
        require("gone")


def test_every_table_row_is_complete():
    packages = system_packages()
    assert set(packages) == {"chromium", "postgresql", "nginx", "node"}
    assert all(package.packages and package.needed_by for package in packages.values())
