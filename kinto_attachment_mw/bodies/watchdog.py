"""One thread per process that looks at every body being read, a few times a second.

A body read blocks in ``recv`` for as long as the client keeps a byte trickling in now
and then (gunicorn fills a read of 1 KiB or more before it returns, whatever the socket's
time-out), so a check made when a read returns comes too late. The watchdog checks from
outside, and a body that missed its rate or deadline has its connection's read side cut
(:meth:`~.watch.BodyWatch.check`): the blocked read returns and the thread is free.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from . import watch as watches
from .watch import BodyWatch

logger = logging.getLogger(__name__)

#: Seconds between two looks: how late after its limit a body is cut, at most.
PERIOD = 0.25


class Watchdog:
    """Adding a watch never wakes the thread: it looks every ``period`` whether or not
    there is anything to look at, so that the everyday request, whose small body is read
    at once, costs a set insertion, not a switch to another thread and back."""

    def __init__(self, period: float = PERIOD):
        self.period = period
        self._watches: set[BodyWatch] = set()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def add(self, watch: BodyWatch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._pid != os.getpid():  # first use, or in a forked worker
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="body-watchdog", daemon=True).start()

    def discard(self, watch: BodyWatch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            with self._lock:
                current = list(self._watches)
            now = watches.clock()
            for watch in current:
                try:
                    if watch.check(now):
                        self.discard(watch)
                except Exception:  # noqa: BLE001 - the watchdog must outlive any one request
                    logger.exception("Checking a request body's progress failed")
                    self.discard(watch)


#: The process's watchdog, shared by every middleware in it.
WATCHDOG = Watchdog()
