#!/usr/bin/env python3
"""Upload files as Kinto attachments: ``kinto-attachment upload``, runnable from here.

    python3 examples/upload.py --server http://127.0.0.1:8888/v1 --bucket b \
        --collection c --auth alice:secret FILE...
"""

import sys

from in_venv import ensure_venv

if __name__ == "__main__":
    ensure_venv()
    from kinto_attachment_mw.tools.cli import main

    sys.exit(main(["upload", *sys.argv[1:]]))
