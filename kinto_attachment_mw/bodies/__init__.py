"""How long and how slowly a client may send a request body, whoever reads it (the
middleware or Kinto): a minimum data rate after a grace period, a total deadline for
bodies that cannot be uploads, and a connection closed, not drained, when the answer
comes before the body (:class:`~.guard.BodyGuard`). Under gunicorn a watchdog thread
(:mod:`.watchdog`) shuts the read side of a connection whose body misses its rate, so
that the read blocked on it returns (:mod:`.connection`); elsewhere each read is
accounted when it returns (:mod:`.watch`)."""

from .guard import BodyGuard

__all__ = ["BodyGuard"]
