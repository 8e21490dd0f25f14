#!/usr/bin/env python3
"""Download every attachment of a collection: ``kinto-attachment download``, from here.

    python examples/download.py --server http://127.0.0.1:8888/v1 --bucket b \
        --collection c --auth alice:secret --folder out/
"""

import sys

from kinto_attachment_mw.tools.cli import main

if __name__ == "__main__":
    sys.exit(main(["download", *sys.argv[1:]]))
