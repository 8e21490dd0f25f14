"""``kinto-attachment-mw privatize`` on a collection of many files: how long it takes to
copy each file under ``_private/`` and rewrite its record through Kinto's API, against a
real server (gunicorn, Kinto's memory backend, local storage), as an operator runs it.

Usage: ``.venv/bin/python benchmarks/privatize.py [--records 1000] [--kib 10]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.live_server import USER, Kinto, kinto_ini_server  # noqa: E402

COMMAND = str(Path(sys.executable).with_name("kinto-attachment-mw"))
SETTING = "kinto.attachment.resources.b.c.private"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--kib", type=int, default=10, help="size of each file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server, root = kinto_ini_server(tmp, attachment={SETTING: "false"})
        try:
            kinto = Kinto(server)
            kinto.create_collection()
            content = os.urandom(args.kib * 1024)
            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(
                        lambda i: kinto.upload(f"r{i}", f"f{i}.txt", content), range(args.records)
                    )
                )
            if any(answer.status_code != 201 for answer in answers):
                raise SystemExit("an upload failed")
            # The ini as an operator changes it before running the command (the server
            # keeps its own settings: it only has to accept the records' new locations).
            ini = tmp / "kinto.ini"
            ini.write_text(ini.read_text().replace(f"{SETTING} = false", f"{SETTING} = true"))
            command = [COMMAND, "privatize", "--ini", str(ini), "--server", f"{server.url}/v1"]
            command += ["--auth", ":".join(USER), "--bucket", "b", "--collection", "c"]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - start
        finally:
            server.stop()
    print(done.stdout.splitlines()[-1])
    print(
        f"privatize: {args.records} records of {args.kib} KiB in {seconds:.1f} s"
        f" ({args.records / seconds:.0f} records/s)"
    )


if __name__ == "__main__":
    main()
