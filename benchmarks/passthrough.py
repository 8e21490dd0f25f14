"""Pass-through cost: what the middleware adds to requests that are not about attachments.

Kinto (memory backend) is built in-process twice over the same app: bare, and wrapped by
the middleware. A GET and a PATCH of a small record (the PATCH body is read and checked
for ``attachment`` by the middleware) are timed in CPU seconds (steady on a noisy
machine), in interleaved rounds (bare, wrapped, bare, ...), and the ratio is taken round
by round.

The ratio of two Kinto runs wobbles by a few percent on a busy machine, so the dispatch
itself is also timed against a no-op app: that is the whole cost the middleware adds.

Usage: ``.venv/bin/python benchmarks/passthrough.py [--rounds 9] [--requests 500]``
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
import timeit
import warnings

import kinto
from webob import Request

from kinto_attachment_mw import AttachmentMiddleware

RECORD = "/v1/buckets/b/collections/c/records/r"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}


def build(storage_root: str):
    settings = {
        "kinto.storage_backend": "kinto.core.storage.memory",
        "kinto.cache_backend": "kinto.core.cache.memory",
        "kinto.permission_backend": "kinto.core.permission.memory",
        "kinto.userid_hmac_secret": "bench",
        "multiauth.policies": "basicauth",
        "kinto.bucket_create_principals": "system.Authenticated",
        "kinto.attachment.base_path": storage_root,
    }
    bare = kinto.main({}, **settings)
    return bare, AttachmentMiddleware(bare, settings)


def call(app, method: str, path: str, body: bytes = b"") -> int:
    request = Request.blank(path, method=method, headers=AUTH)
    if body:
        request.body = body
        request.content_type = "application/json"
    return request.get_response(app).status_int


PATCH_BODY = b'{"data": {"title": "patched"}}'


def cpu_per_request(app, count: int, method: str = "GET") -> float:
    body = PATCH_BODY if method == "PATCH" else b""
    start = time.process_time()
    for _ in range(count):
        assert call(app, method, RECORD, body) == 200
    return (time.process_time() - start) / count


def dispatch_overhead_us(storage_root: str, count: int = 200_000) -> float:
    """What deciding "not mine" costs, around an app that does nothing."""

    def noop(environ, start_response):
        return [b""]

    wrapped = AttachmentMiddleware(noop, {"kinto.attachment.base_path": storage_root})
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": RECORD}
    bare_s = min(timeit.repeat(lambda: noop(environ, None), number=count, repeat=5))
    wrapped_s = min(timeit.repeat(lambda: wrapped(environ, None), number=count, repeat=5))
    return (wrapped_s - bare_s) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as root:
        bare, wrapped = build(root)
        for path in ("/v1/buckets/b", "/v1/buckets/b/collections/c"):
            call(bare, "PUT", path, b"{}")
        call(bare, "PUT", RECORD, b'{"data": {"title": "small"}}')
        pairs = {"GET": [], "PATCH": []}
        for method, measured in pairs.items():
            cpu_per_request(bare, 100, method)  # warm-up
            cpu_per_request(wrapped, 100, method)
            for _ in range(args.rounds):
                measured.append(
                    (
                        cpu_per_request(bare, args.requests, method),
                        cpu_per_request(wrapped, args.requests, method),
                    )
                )
        overhead_us = dispatch_overhead_us(root)
    print("\nPass-through: a small record, in-process, CPU time per request")
    for method, measured in pairs.items():
        bare_ms = statistics.median(b for b, _ in measured) * 1000
        wrapped_ms = statistics.median(w for _, w in measured) * 1000
        ratio = statistics.median(w / b for b, w in measured)
        print(
            f"  {method:5} bare Kinto {bare_ms:.3f} ms, wrapped {wrapped_ms:.3f} ms,"
            f" ratio {ratio:.3f}"
        )
    print(f"  ({args.rounds} interleaved rounds of {args.requests} requests, median ratio)")
    bare_get_ms = statistics.median(b for b, _ in pairs["GET"]) * 1000
    print(
        f"  dispatch alone: {overhead_us:.2f} us per request"
        f" ({overhead_us / (bare_get_ms * 1000):.4%} of bare Kinto's CPU per GET)"
    )


if __name__ == "__main__":
    main()
