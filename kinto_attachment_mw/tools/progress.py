"""Progress bars: one for the file being transferred, one for the whole run."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from tqdm import tqdm

Advance = Callable[[int], None]


class Progress:
    """Byte counters shown as bars on stderr (hidden when stderr is not a terminal)."""

    def __init__(self, total_bytes: int, label: str, enabled: bool | None = None):
        self.disable = not sys.stderr.isatty() if enabled is None else not enabled
        self.overall = self._bar(total_bytes, label, position=0)

    def _bar(self, total: int, label: str, **options) -> tqdm:
        return tqdm(
            total=total,
            desc=label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=self.disable,
            **options,
        )

    @contextlib.contextmanager
    def file(self, name: str, size: int, share: int | None = None) -> Iterator[Advance]:
        """A bar for ``size`` bytes of one file, which stand for ``share`` bytes of the
        overall total (a compressed file's upload stands for its uncompressed size);
        yields a callback taking the number of new bytes."""
        share = size if share is None else share
        scale = share / size if size else 0.0
        bar = self._bar(size, name, position=1, leave=False)
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            bar.update(count)
            self.overall.update(count * scale)

        try:
            yield advance
        finally:
            bar.close()
            # A skipped or failed file still counts as dealt with in the overall bar.
            self.overall.update(max(size - done, 0) * scale)

    def skip(self, size: int) -> None:
        self.overall.update(size)

    def note(self, message: str) -> None:
        """A line printed above the bars (or plainly when they are hidden)."""
        tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        self.overall.close()
