"""What one upload measured, and how the uploads of one file are summed up.

Kept apart from the measuring and the printing so that the table and the JSON file are
computed from the same figures, in one place.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from procstat import CLOCK_TICKS_PER_S
from servers import CEILING, PLUGIN


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
class CaseResult:
    """All uploads of one file (a size and a kind of content), by server.

    The i-th runs of the servers were made in one round, seconds apart: they are compared
    with each other, never with another round's.
    """

    size_mib: int
    kind: str
    servers: tuple[str, ...]
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.servers:
            self.runs.setdefault(name, [])

    def median(self, server: str, measure: str) -> float:
        """The median of a ``Run`` field (``mib_per_s``, ...) over ``server``'s runs."""
        return statistics.median(getattr(run, measure) for run in self.runs[server])

    def max_peak_growth_mib(self, server: str) -> float:
        return max(run.peak_growth_mib for run in self.runs[server])

    def ratio(self, server: str, reference: str) -> float | None:
        """Median of ``server``/``reference`` MiB/s, round by round (``None``: not both run).

        Each ratio compares two uploads made seconds apart, so a slow spell of the machine
        tends to hit both of its terms; a ratio of the two medians would not pair them.
        """
        if server not in self.runs or reference not in self.runs:
            return None
        pairs = zip(self.runs[server], self.runs[reference], strict=True)
        return statistics.median(a.mib_per_s / b.mib_per_s for a, b in pairs)

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
            "max_rss_after_growth_mib": round(
                max(run.rss_after_mib - run.rss_before_mib for run in self.runs[server]), 1
            ),
            "details": [asdict(run) for run in self.runs[server]],
        }

    def summary(self) -> dict:
        ratios = {}
        for server in self.servers:
            for reference in (CEILING, PLUGIN):
                ratio = self.ratio(server, reference) if server != reference else None
                if ratio is not None:
                    ratios[f"{server}/{reference}"] = round(ratio, 3)
        return {
            "size_mib": self.size_mib,
            "kind": self.kind,
            "servers": {name: self.server_summary(name) for name in self.servers},
            "median_ratios": ratios,
        }
