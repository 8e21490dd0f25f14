"""How deep JSON may nest on its way into Kinto.

Kinto copies and walks records recursively: deep enough, a record makes it fail with a
500 (about 500 levels on its memory backend, fewer under a server's deeper stacks). The
middleware refuses such bodies itself, before Kinto sees them, with a 400 that says why.
"""

from __future__ import annotations

from . import errors

#: Far beyond any record's shape, far below where Python or Kinto give up.
MAX_DEPTH = 100


def depth_of(value: object) -> int:
    """How many objects and arrays nest in ``value`` at the deepest (without recursion)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


def check_depth(value: object, what: str = "The JSON body") -> None:
    if depth_of(value) > MAX_DEPTH:
        raise too_deep(what)


def too_deep(what: str = "The JSON body") -> errors.AttachmentError:
    return errors.invalid_body(
        f"{what} is nested too deeply (more than {MAX_DEPTH} levels): flatten it."
    )
