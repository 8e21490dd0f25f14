"""What one upload measured, and how the uploads of one size are summed up.

Kept apart from the measuring and the printing so that the table and the JSON file are
computed from the same figures, in one place.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from procstat import CLOCK_TICKS_PER_S
from servers import CEILING, MIDDLEWARE, SERVERS


@dataclass
class Run:
    """One upload to one server.

    Server CPU is user + system time; user time alone is kept too, because system time
    mostly pays for the kernel's side of the upload (socket, page cache), and on a VM that
    hands freed memory back to its host (free page reporting), filling the page cache costs
    several times more when the pages were freed seconds before than just before.
    """

    seconds: float
    mib_per_s: float
    server_cpu_s: float
    server_user_s: float
    server_cpu_s_per_gib: float
    server_user_s_per_gib: float
    client_cpu_s: float
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    peak_growth_mib: float
    samples: int
    processes: int


@dataclass
class SizeResult:
    """All uploads of one size, by server; the i-th runs of the two servers make a pair."""

    size_mib: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {name: [] for name in SERVERS})

    def median(self, server: str, measure: str) -> float:
        """The median of a ``Run`` field (``mib_per_s``, ...) over ``server``'s runs."""
        return statistics.median(getattr(run, measure) for run in self.runs[server])

    def max_peak_growth_mib(self, server: str) -> float:
        return max(run.peak_growth_mib for run in self.runs[server])

    @property
    def median_ratio(self) -> float:
        """Median of middleware/ceiling MiB/s, pair by pair.

        Each ratio compares two uploads made seconds apart, so a slow spell of the machine
        tends to hit both of its terms; a ratio of the two medians would not pair them.
        """
        pairs = zip(self.runs[MIDDLEWARE], self.runs[CEILING], strict=True)
        return statistics.median(mw.mib_per_s / ceiling.mib_per_s for mw, ceiling in pairs)

    def _all_runs(self) -> Iterator[Run]:
        for runs in self.runs.values():
            yield from runs

    @property
    def min_samples(self) -> int:
        return min(run.samples for run in self._all_runs())

    @property
    def min_ticks(self) -> float:
        return min(run.server_cpu_s for run in self._all_runs()) * CLOCK_TICKS_PER_S

    def server_summary(self, server: str) -> dict:
        return {
            "runs": len(self.runs[server]),
            "median_mib_per_s": round(self.median(server, "mib_per_s"), 1),
            "median_server_cpu_s_per_gib": round(self.median(server, "server_cpu_s_per_gib"), 2),
            "median_server_user_s_per_gib": round(self.median(server, "server_user_s_per_gib"), 2),
            "max_peak_growth_mib": round(self.max_peak_growth_mib(server), 1),
            "details": [asdict(run) for run in self.runs[server]],
        }

    def summary(self) -> dict:
        """The middleware's figures at the top level, where they were before the ceiling."""
        return {
            "size_mib": self.size_mib,
            **self.server_summary(MIDDLEWARE),
            "median_ratio_to_ceiling": round(self.median_ratio, 3),
            CEILING: self.server_summary(CEILING),
        }
