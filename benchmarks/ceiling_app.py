"""The upload benchmark's ceiling: the least any server must do to accept an upload.

It reads the body in 1 MiB chunks (never past CONTENT_LENGTH), writes it raw to a new file
while hashing it with SHA-256, and answers 201 with the hash and size. No multipart parsing,
no Kinto: whatever the middleware costs above this is its own. Each upload then removes the
file of the upload before it, as the middleware removes a record's replaced file, so that
disk use stays bounded and both pay the same: the file removed was written seconds ago and
is already on disk. (Removing the new file itself before answering would time the kernel
dropping dirty pages, some of them under writeback, which the middleware never does.)
"""

import hashlib
import json
import os
import tempfile

CHUNK = 1024 * 1024
#: The benchmark puts it beside the middleware's storage (same disk); else $TMPDIR.
FOLDER = os.environ.get("CEILING_DIR") or None
#: The previous upload's file, removed once the next one is written (one worker thread).
_previous: list[str] = []


def application(environ, start_response):
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream, digest, size = environ["wsgi.input"], hashlib.sha256(), 0
    fd, path = tempfile.mkstemp(dir=FOLDER)
    with open(fd, "wb") as out:
        while remaining > 0:
            chunk = stream.read(min(CHUNK, remaining))
            if not chunk:  # the client went away: the size will say so
                break
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
            remaining -= len(chunk)
    while _previous:
        os.unlink(_previous.pop())
    _previous.append(path)
    body = json.dumps({"hash": digest.hexdigest(), "size": size}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("201 Created", headers)
    return [body]
