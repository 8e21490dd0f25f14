"""How deep JSON may nest on its way into Kinto.

Kinto copies and walks records recursively: deep enough, a record makes it fail with a
500 (about 500 levels on its memory backend, fewer under a server's deeper stacks). The
middleware refuses such bodies itself, before Kinto sees them, with a 400 that says why
(each caller in its own envelope: a form field's errno is not a body's).
"""

from __future__ import annotations

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


def too_deep(value: object) -> bool:
    return depth_of(value) > MAX_DEPTH


def too_deep_message(what: str) -> str:
    return f"{what} is nested too deeply (more than {MAX_DEPTH} levels): flatten it."
