"""The ``kinto-attachment`` plugin, installed into virtualenvs of its own.

The plugin and this project cannot share one: the plugin pins its own dependencies and
would be imported by Kinto when listed in ``kinto.includes``. The benchmark makes each
virtualenv once (at the top of the checkout, reused while the versions match) with the
very Kinto, WebOb and gunicorn versions this project runs, so that the servers differ by
the attachment code alone:

- ``.venv-plugin``: 8.0.0, the newest release that installs on Python 3.11, on local
  disk (its upload code is 9.0.1's);
- ``.venv-plugin-gcs``: 9.0.1, its Google Cloud Storage backend, on Python 3.12 (which it
  needs: ``pyenv global 3.11.7 3.12.1`` puts ``python3.12`` on the PATH), with the
  google-cloud-storage version this project runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from servers import BenchmarkError

TOP = Path(__file__).resolve().parent.parent
#: Same versions on both sides: the comparison is about the attachment code only.
SHARED = ("kinto", "WebOb", "gunicorn")


def requirements(plugin_version: str, *shared: str) -> list[str]:
    pinned = [f"{name}=={version(name)}" for name in (*SHARED, *shared)]
    return [f"kinto-attachment=={plugin_version}", *pinned]


def plugin_python() -> Path:
    """The plugin 8.0.0's interpreter (Python 3.11, local disk)."""
    return _virtualenv(TOP / ".venv-plugin", sys.executable, requirements("8.0.0"))


def plugin_gcs_python() -> Path:
    """The plugin 9.0.1's interpreter (Python 3.12, Google Cloud Storage)."""
    python312 = shutil.which("python3.12")
    if python312 is None:
        raise BenchmarkError("the plugin 9.0.1 needs python3.12 on the PATH")
    wanted = requirements("9.0.1", "google-cloud-storage")
    return _virtualenv(TOP / ".venv-plugin-gcs", python312, wanted)


def _virtualenv(venv: Path, base_python: str, wanted: list[str]) -> Path:
    """``venv``'s interpreter, made (or remade) when the versions changed."""
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == "\n".join(wanted):
        return python
    print(f"Installing {', '.join(wanted)} into {venv} ...", flush=True)
    try:
        subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *wanted], check=True)
    except subprocess.CalledProcessError as error:
        raise BenchmarkError(f"could not install the plugin: {error}") from error
    stamp.write_text("\n".join(wanted))
    return python
