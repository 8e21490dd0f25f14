"""The closing line of a run, and its exit code."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Summary:
    done_label: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{len(self.done)} {self.done_label}, {len(self.skipped)} skipped, "
            f"{len(self.failed)} failed"
        )

    def exit_code(self) -> int:
        return 1 if self.failed else 0
