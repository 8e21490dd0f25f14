"""``make serve`` itself, as README.rst tells a new user to start it, on a free port.

Only the storage folder differs (``KINTO_ATTACHMENT_BASE_PATH``, Kinto's environment
override of the ini's ``base_path``), so that tests leave nothing in the checkout.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from .servers import STOP_TIMEOUT, GunicornServer, free_port

REPOSITORY = Path(__file__).resolve().parents[2]
README = REPOSITORY / "README.rst"


class MakeServe(GunicornServer):
    """``make serve`` and the gunicorn it runs, in one process group."""

    def stop(self) -> None:
        """SIGTERM to the group (make forwards nothing to gunicorn), then as any server."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(STOP_TIMEOUT)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        super().stop()


def start_make_serve(
    folder: Path, port: int | None = None, env: dict[str, str] | None = None
) -> MakeServe:
    """``make serve PORT=port`` with its files under ``folder/attachments`` (``env``:
    more of Kinto's environment overrides of the ini)."""
    port = port or free_port()
    storage = folder / "attachments"
    storage.mkdir(parents=True, exist_ok=True)
    overrides, env = (
        env,
        {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("MAKE") and name != "MFLAGS"  # not the enclosing make's
        },
    )
    env["KINTO_ATTACHMENT_BASE_PATH"] = str(storage)
    env.update(overrides or {})
    log_path = folder / "make-serve.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(REPOSITORY), "serve", f"PORT={port}"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = MakeServe(process, port, log_path)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server
