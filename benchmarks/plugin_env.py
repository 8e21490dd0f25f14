"""The ``kinto-attachment`` plugin, installed into a virtualenv of its own.

The plugin and this project cannot share one: the plugin pins its own dependencies and
would be imported by Kinto when listed in ``kinto.includes``. The benchmark makes the
virtualenv once (``.venv-plugin`` at the top of the checkout, reused while the versions
match) with the very Kinto, WebOb and gunicorn versions this project runs, so that the two
servers differ by the attachment code alone. 8.0.0 is the newest release that installs on
Python 3.11 (9.0.1 needs 3.12); its upload code is 9.0.1's.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from servers import BenchmarkError

PLUGIN_VERSION = "8.0.0"
VENV = Path(__file__).resolve().parent.parent / ".venv-plugin"
#: Same versions on both sides: the comparison is about the attachment code only.
SHARED = ("kinto", "WebOb", "gunicorn")


def requirements() -> list[str]:
    return [f"kinto-attachment=={PLUGIN_VERSION}"] + [f"{name}=={version(name)}" for name in SHARED]


def plugin_python() -> Path:
    """The plugin virtualenv's interpreter, made (or remade) when the versions changed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = "\n".join(requirements())
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"Installing {', '.join(requirements())} into {VENV} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *requirements()],
            check=True,
        )
    except subprocess.CalledProcessError as error:
        raise BenchmarkError(f"could not install the plugin: {error}") from error
    stamp.write_text(wanted)
    return python
