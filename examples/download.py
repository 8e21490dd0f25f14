#!/usr/bin/env python3
"""Download every attachment of a collection: ``kinto-attachment download``, from here.

    python3 examples/download.py --server http://127.0.0.1:8888/v1 --bucket b \
        --collection c --auth alice:secret --folder out/
"""

import sys

from in_venv import ensure_venv

if __name__ == "__main__":
    ensure_venv()
    from kinto_attachment_mw.tools.cli import main

    sys.exit(main(["download", *sys.argv[1:]]))
