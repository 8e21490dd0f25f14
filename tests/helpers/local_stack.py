"""examples/production/local_stack.py (nginx's configuration and command, free ports), as
the tests load it: it lives with the example, not in a package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PRODUCTION = Path(__file__).resolve().parents[2] / "examples" / "production"


def _load():
    spec = importlib.util.spec_from_file_location("local_stack", PRODUCTION / "local_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stack = _load()
