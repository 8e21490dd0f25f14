"""The Debian packages some tests need, from the table ``.ci/system-packages`` installs
from: a test whose package is missing is skipped with the line that script prints."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parents[2] / ".ci" / "system-packages.txt"
#: As for the script: another table, to see what a machine without a package gets.
TABLE_VARIABLE = "SYSTEM_PACKAGES_TABLE"


@dataclass(frozen=True)
class SystemPackage:
    name: str
    path_glob: str
    packages: str
    needed_by: str

    @property
    def installed(self) -> bool:
        return bool(glob.glob(self.path_glob))

    @property
    def missing_reason(self) -> str:
        return (
            f"missing system package: apt-get install {self.packages} (as root), "
            f"for {self.needed_by}"
        )


def system_packages(table: Path | None = None) -> dict[str, SystemPackage]:
    rows = (
        line.split("|")
        for line in (table or Path(os.environ.get(TABLE_VARIABLE) or TABLE))
        .read_text()
        .splitlines()
    )
    return {
        row[0]: SystemPackage(*row) for row in rows if len(row) == 4 and not row[0].startswith("#")
    }


def require(name: str) -> None:
    """Skip the calling test (or fixture) when Debian's ``name`` is not installed."""
    package = system_packages()[name]
    if not package.installed:
        pytest.skip(package.missing_reason)
