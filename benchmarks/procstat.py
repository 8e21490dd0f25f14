"""A server's memory and CPU, read from /proc while an upload runs.

The streaming promise is about the server process, not the client, so the benchmark reads
the gunicorn master and its workers from the outside, as ``ps`` would: summed VmRSS for
memory, utime and stime for CPU. Linux only.
"""

from __future__ import annotations

import os
import threading
import time

SAMPLE_INTERVAL_S = 0.02
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants.

    Found by scanning /proc for PPid, because /proc/PID/task/*/children is not built into
    every kernel (it is missing on this one). A process may vanish mid-scan: skipped.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        ppid = status_field(int(entry), "PPid")
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry))
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def status_field(pid: int, name: str) -> int | None:
    """An integer field of /proc/PID/status (first number on its line), or ``None``."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def rss_kib(pids: list[int]) -> int:
    """Summed VmRSS of ``pids`` (the gunicorn master and its workers), in KiB."""
    return sum(status_field(pid, "VmRSS") or 0 for pid in pids)


class MemorySampler:
    """Samples the server's RSS in a background thread while an upload runs.

    The client blocks in socket calls (releasing the GIL) during an upload, so a thread is
    enough to sample every ~20 ms without disturbing it much. The processes are found once,
    before the upload: scanning all of /proc costs ~1.5 ms of CPU per sample here, reading
    two status files ~45 µs. (A worker replaced mid-upload would have failed the upload.)
    """

    def __init__(self, pids: list[int], interval_s: float = SAMPLE_INTERVAL_S):
        self.pids = pids
        self.interval_s = interval_s
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, rss_kib(self.pids))
            self.samples += 1
            if self._stop.wait(self.interval_s):
                break


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """Summed (utime, stime) of ``pids`` (/proc/PID/stat), in seconds.

    The server's own CPU, apart from the client's and the sampler's that share the machine:
    steadier than wall-clock time, which waits whenever the other core is busy elsewhere.
    Kept apart because system time also swings with the machine's memory history (see
    ``results.Run``). Fields are counted after the ``)`` closing the command name (it may
    hold spaces): utime and stime are fields 14 and 15.
    """
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLOCK_TICKS_PER_S, system / CLOCK_TICKS_PER_S


class MemoryTimeline(MemorySampler):
    """:class:`MemorySampler` that also keeps the kernel's high-water mark (VmHWM) as last
    read, and RSS over time (one point per ``step_s``), to see when the peak is."""

    def __init__(self, pid: int, step_s: float = 0.5):
        super().__init__([pid])
        self.step_s = step_s
        self.pid = pid
        self.started = time.perf_counter()
        self.hwm_kib = 0
        self.timeline: list[tuple[float, float]] = []

    def _run(self) -> None:
        while True:
            rss = rss_kib(self.pids)
            self.peak_kib = max(self.peak_kib, rss)
            self.hwm_kib = max(self.hwm_kib, status_field(self.pid, "VmHWM") or 0)
            self.samples += 1
            elapsed = time.perf_counter() - self.started
            if not self.timeline or elapsed - self.timeline[-1][0] >= self.step_s:
                self.timeline.append((round(elapsed, 2), round(rss / 1024, 1)))
            if self._stop.wait(self.interval_s):
                break


class CpuSampler:
    """Summed CPU seconds of a process tree (the PostgreSQL cluster), sampled while the gc
    runs: the last value seen of each process, so a backend's final fraction of a sample
    interval is missed."""

    def __init__(self, root_pid: int, interval_s: float = 0.25):
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.start = self._now()
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _now(self) -> dict[int, float]:
        return {pid: sum(cpu_times([pid])) for pid in process_tree(self.root_pid)}

    def _run(self) -> None:
        while True:
            self.seen.update(self._now())
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.seen.items())


def cpu_seconds(pids: list[int]) -> float:
    """Summed CPU time (user + system) of ``pids``, to the nanosecond where the kernel
    says (/proc/PID/schedstat: time spent running), else in clock ticks (/proc/PID/stat)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as schedstat:
                total += int(schedstat.read().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError):  # no schedstat, or a process gone
            total += sum(cpu_times([pid]))
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and iowait): /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_S
