"""``python3 examples/upload.py`` works outside the virtualenv too, as the README's
readers run it: the script finds ``.venv``, or says what to install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}  # no virtualenv activated


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SYSTEM_PYTHON, str(script), *args],
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
        timeout=60,
    )


@pytest.mark.parametrize("name,command", [("upload", "upload"), ("download", "download")])
def test_example_scripts_run_with_the_system_python(name, command):
    done = run(EXAMPLES / f"{name}.py", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: kinto-attachment {command} ")


def test_without_the_virtualenv_the_script_says_what_to_install(tmp_path):
    for name in ("upload.py", "in_venv.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    done = run(tmp_path / "upload.py", "--help")
    assert done.returncode == 1
    assert done.stderr == (
        "upload.py: kinto_attachment_mw is not installed: run `make install` at the top of "
        "the repository, or `pip install kinto-attachment-mw[tools]`\n"
    )
