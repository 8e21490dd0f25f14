"""Lets the example scripts run with any ``python3``: without ``kinto_attachment_mw`` at
hand they run again with the repository's ``.venv`` (``make install`` makes it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent.parent / ".venv"


def ensure_venv() -> None:
    """Return when the tools can be imported; else re-run the script in ``.venv``, or
    say in one line what to install."""
    try:
        import kinto_attachment_mw.tools.cli  # noqa: F401
    except ModuleNotFoundError as missing:
        python = VENV / "bin" / "python"
        if python.exists() and Path(sys.prefix).resolve() != VENV.resolve():
            os.execv(python, [str(python), *sys.argv])
        sys.exit(
            f"{Path(sys.argv[0]).name}: {missing.name} is not installed: run `make install` "
            "at the top of the repository, or `pip install kinto-attachment-mw[tools]`"
        )
