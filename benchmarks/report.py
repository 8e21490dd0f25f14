"""How the upload benchmark tells what it found: on the terminal, and in a JSON file.

Numbers alone mislead, so the report also says what they depend on (machine, versions),
which of them rest on too few samples to be trusted, and whether the memory target is met.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict
from datetime import datetime
from importlib.metadata import version

from client import MIB
from procstat import CLOCK_TICKS_PER_S, SAMPLE_INTERVAL_S
from results import Run, SizeResult
from servers import BENCHMARKS_DIR, MIDDLEWARE, SERVERS, BenchmarkError

RESULTS_FILE = BENCHMARKS_DIR / "results" / "upload.json"
#: The 512 MiB upload should grow the (middleware) server's memory by less than this.
TARGET_SIZE_MIB = 512
TARGET_GROWTH_MIB = 32
#: On S3 a part (8 MiB) is held while it is sent: the target is looser.
S3_TARGET_GROWTH_MIB = 64
#: Fewer samples than this per upload, and the peak is a guess (said so under the table).
MIN_RELIABLE_SAMPLES = 5
#: Fewer CPU clock ticks than this per upload, and CPU per GiB is coarse (said so too).
MIN_RELIABLE_TICKS = 50


def machine_info() -> dict:
    """What the numbers depend on, so that a result file can be compared with another."""
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gib": round(_meminfo_kib("MemTotal") / MIB, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kinto": version("kinto"),
        "gunicorn": version("gunicorn"),
        "kinto_attachment_mw": version("kinto-attachment-mw"),
    }


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _meminfo_kib(name: str) -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise BenchmarkError(f"{name} not in /proc/meminfo")


def print_environment(info: dict) -> None:
    print(f"Date:     {info['date']}")
    print(f"Machine:  {info['cores']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM")
    print(f"Platform: {info['platform']}")
    print(
        f"Versions: Python {info['python']}, Kinto {info['kinto']}, "
        f"gunicorn {info['gunicorn']}, kinto-attachment-mw {info['kinto_attachment_mw']}"
    )
    print()


def print_run(label: str, run: Run) -> None:
    print(
        f"  {label}: {run.seconds:.2f} s, {run.mib_per_s:.1f} MiB/s, "
        f"server CPU {run.server_cpu_s:.2f} s (user {run.server_user_s:.2f}), "
        f"client CPU {run.client_cpu_s:.2f} s, server RSS {run.rss_before_mib:.1f} -> "
        f"peak {run.rss_peak_mib:.1f} ({run.peak_growth_mib:+.1f}) -> "
        f"after {run.rss_after_mib:.1f} MiB "
        f"(processes: {run.processes}, samples: {run.samples})",
        flush=True,
    )


def table_rows(result: SizeResult) -> list[tuple[str, ...]]:
    """One row per server, middleware first; the pairs' ratio on the middleware's row."""
    rows = []
    for name in SERVERS:
        ratio = f"{result.median_ratio:.2f}" if name == MIDDLEWARE else ""
        rows.append(
            (
                str(result.size_mib),
                name,
                str(len(result.runs[name])),
                f"{result.median(name, 'mib_per_s'):.1f}",
                ratio,
                f"{result.median(name, 'server_cpu_s_per_gib'):.2f}",
                f"{result.median(name, 'server_user_s_per_gib'):.2f}",
                f"{result.max_peak_growth_mib(name):.1f}",
            )
        )
    return rows


def print_table(results: list[SizeResult]) -> None:
    header = (
        "size (MiB)",
        "server",
        "runs",
        "MiB/s",
        "mw/ceiling",
        "server CPU s/GiB",
        "user s/GiB",
        "peak growth (MiB)",
    )
    rows = [row for result in results for row in table_rows(result)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        "MiB/s, CPU: medians over the runs; mw/ceiling: median of the pairs' MiB/s ratios; "
        "server CPU: user + system;\npeak growth: largest over the runs."
    )
    print_notes(results)
    print()


def print_notes(results: list[SizeResult]) -> None:
    """Say which figures rest on too few memory samples or CPU ticks to be trusted."""
    too_short = [str(r.size_mib) for r in results if r.min_samples < MIN_RELIABLE_SAMPLES]
    if too_short:
        print(
            f"Note: uploads of {', '.join(too_short)} MiB took under {MIN_RELIABLE_SAMPLES} "
            f"sampling intervals ({SAMPLE_INTERVAL_S * 1000:.0f} ms); a short-lived peak "
            "may have been missed."
        )
    coarse = [str(r.size_mib) for r in results if r.min_ticks < MIN_RELIABLE_TICKS]
    if coarse:
        print(
            f"Note: server CPU for {', '.join(coarse)} MiB rests on under {MIN_RELIABLE_TICKS} "
            f"clock ticks ({1000 / CLOCK_TICKS_PER_S:.0f} ms each) per upload: coarse."
        )


def target_verdict(results: list[SizeResult]) -> dict:
    """Whether the 512 MiB upload stayed under the memory target (reported, never fatal)."""
    for result in results:
        if result.size_mib == TARGET_SIZE_MIB:
            growth = result.max_peak_growth_mib(MIDDLEWARE)
            return {"measured": True, "growth_mib": growth, "met": growth < TARGET_GROWTH_MIB}
    return {"measured": False}


def print_verdict(verdict: dict) -> None:
    goal = f"{TARGET_SIZE_MIB} MiB upload grows server memory by < {TARGET_GROWTH_MIB} MiB"
    if not verdict["measured"]:
        print(f"Target ({goal}): not measured (no {TARGET_SIZE_MIB} MiB size in this run)")
    else:
        outcome = "MET" if verdict["met"] else "MISSED"
        print(f"Target ({goal}): {outcome} (max peak growth {verdict['growth_mib']:.1f} MiB)")


def s3_summary(results: dict[int, list[Run]]) -> list[dict]:
    """Per size: median throughput and CPU, largest memory growth, against the S3 target."""
    summary = []
    for size_mib, runs in sorted(results.items()):
        growth = max(run.peak_growth_mib for run in runs)
        summary.append(
            {
                "size_mib": size_mib,
                "runs": len(runs),
                "median_mib_per_s": statistics.median(run.mib_per_s for run in runs),
                "median_server_cpu_s_per_gib": statistics.median(
                    run.server_cpu_s_per_gib for run in runs
                ),
                "max_peak_growth_mib": growth,
                "target_met": growth < S3_TARGET_GROWTH_MIB,
                "details": [asdict(run) for run in runs],
            }
        )
    return summary


def print_s3_table(summary: list[dict]) -> None:
    print("S3 storage (moto's server; its own memory not counted):")
    print("size (MiB)  runs  MiB/s  server CPU s/GiB  peak growth (MiB)  target")
    for row in summary:
        verdict = "MET" if row["target_met"] else "MISSED"
        print(
            f"{row['size_mib']:>10}  {row['runs']:>4}  {row['median_mib_per_s']:>5.1f}"
            f"  {row['median_server_cpu_s_per_gib']:>16.2f}  {row['max_peak_growth_mib']:>17.1f}"
            f"  {verdict} (< {S3_TARGET_GROWTH_MIB} MiB)"
        )
    print()


def write_json(
    info: dict,
    results: list[SizeResult],
    verdict: dict,
    seconds: float,
    s3: list[dict] | None = None,
) -> None:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "upload",
        "environment": info,
        "units": {
            "throughput": "MiB/s (file bytes / request wall time)",
            "memory": "MiB",
            "server_cpu": "s per GiB of file (utime + stime of gunicorn master and worker)",
            "server_user": "s per GiB of file (utime alone)",
            "ratio": "median over pairs of middleware MiB/s / ceiling MiB/s",
        },
        "memory_measure": "sum of VmRSS of gunicorn master and workers; growth = peak - before",
        "ceiling": "benchmarks/ceiling_app.py under the same gunicorn settings: reads the body "
        "in 1 MiB chunks, hashes it (SHA-256) and writes it to a file; same multipart body, "
        "uploaded right after the middleware's in each pair",
        "results": [result.summary() for result in results],
        "target": {"size_mib": TARGET_SIZE_MIB, "max_growth_mib": TARGET_GROWTH_MIB, **verdict},
        "s3": s3,
        "total_seconds": round(seconds, 1),
    }
    RESULTS_FILE.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Results written to {RESULTS_FILE}")
