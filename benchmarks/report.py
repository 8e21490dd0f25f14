"""How the benchmark tells what it found: on the terminal, and in a JSON file.

The upload table is printed as a reStructuredText simple table, readable as it is and
pasted as it is into README.rst. Numbers alone mislead, so the report also says what they
depend on (machine, versions), which of them rest on too few samples, and which targets
hold.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import datetime
from importlib.metadata import version

from client import MIB
from procstat import CLOCK_TICKS_PER_S, SAMPLE_INTERVAL_S
from results import CaseResult, Run
from servers import (
    BENCHMARKS_DIR,
    CEILING,
    MIDDLEWARE,
    MIDDLEWARE_GCS,
    MIDDLEWARE_S3,
    PLUGIN,
    PLUGIN_GCS,
    BenchmarkError,
)

RESULTS_DIR = BENCHMARKS_DIR / "results"
#: The targets, read off the table (never asserted by tests).
TARGET_SIZE_MIB = 512
TARGET_CEILING_RATIO = 0.9
TARGET_PLUGIN_RATIO = 5.0
TARGET_GROWTH_MIB = 16
TARGET_PASSTHROUGH_CPU_RATIO = 1.03
#: Fewer samples than this per upload, and the peak is a guess (said so under the table).
MIN_RELIABLE_SAMPLES = 5
#: Fewer CPU clock ticks than this per upload, and CPU per GiB is coarse (said so too).
MIN_RELIABLE_TICKS = 50

SHORT = {
    MIDDLEWARE: "mw",
    MIDDLEWARE_S3: "mw+S3",
    PLUGIN: "plugin",
    CEILING: "ceiling",
    MIDDLEWARE_GCS: "mw+GCS",
    PLUGIN_GCS: "plugin+GCS",
}


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
        f"after {run.rss_after_mib:.1f} MiB",
        flush=True,
    )


def print_rows(title: str, columns: list[tuple[str, str, str]], rows: list[dict]) -> None:
    """A titled table of ``rows``; each column is (key, heading, format spec), the spec
    applying to the heading too (``"14"``: left-aligned, ``">7"``: right-aligned)."""
    print(title)
    print("  " + "  ".join(f"{heading:{spec}}" for _, heading, spec in columns))
    for row in rows:
        print("  " + "  ".join(f"{row[key]:{spec}}" for key, _, spec in columns))


#: The two columns the throughput tables end with.
RATE_AND_GROWTH = [("mib_per_s", "MiB/s", ">7"), ("grew_mib", "+MiB", ">6")]


def growth_target(label: str, grew_mib: float, limit_mib: int = 16) -> dict:
    """The target that a server's memory grows by less than ``limit_mib``."""
    return {
        "target": f"{label}: server growth < {limit_mib} MiB",
        "measured": f"+{grew_mib} MiB",
        "met": grew_mib < limit_mib,
    }


def rst_table(header: list[str], rows: list[list[str]]) -> str:
    """A reStructuredText simple table, numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * width for width in widths)

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([rule, line(header), rule, *(line(row) for row in rows), rule])


def _ratio(result: CaseResult, server: str, reference: str) -> str:
    ratio = result.ratio(server, reference)
    return "" if ratio is None else f"{ratio:.2f}"


def upload_table(results: list[CaseResult]) -> str:
    servers = [name for name in SHORT if name in results[0].servers]
    header = ["MiB", "content"]
    header += [f"{SHORT[name]} MiB/s" for name in servers]
    header += ["mw/ceiling", "mw/plugin", "mw+S3/ceiling", "plugin/ceiling", "mw+GCS/plugin+GCS"]
    header += [f"{SHORT[name]} +MiB" for name in servers if name != CEILING]
    rows = []
    for result in results:
        row = [str(result.size_mib), result.kind]
        row += [f"{result.median(name, 'mib_per_s'):.1f}" for name in servers]
        row += [
            _ratio(result, MIDDLEWARE, CEILING),
            _ratio(result, MIDDLEWARE, PLUGIN),
            _ratio(result, MIDDLEWARE_S3, CEILING),
            _ratio(result, PLUGIN, CEILING),
            _ratio(result, MIDDLEWARE_GCS, PLUGIN_GCS),
        ]
        row += [f"{result.max_peak_growth_mib(name):.1f}" for name in servers if name != CEILING]
        rows.append(row)
    return rst_table(header, rows)


UPLOAD_LEGEND = (
    "MiB/s: file bytes over the request's wall time, median of the rounds; ratios: median "
    "of the rounds' ratios\n(each round uploads the same file to every server in turn); "
    "+MiB: the server's peak memory growth during an upload\n(summed VmRSS of gunicorn's "
    "master and worker, sampled every 20 ms), largest over the rounds; moto's and\n"
    "fake-gcs-server's own memory is not counted for mw+S3, mw+GCS and plugin+GCS."
)


def notes(results: list[CaseResult]) -> list[str]:
    """Say which figures rest on too few memory samples or CPU ticks to be trusted."""
    found = []
    short = sorted({r.size_mib for r in results if r.min_samples < MIN_RELIABLE_SAMPLES})
    if short:
        found.append(
            f"uploads of {', '.join(map(str, short))} MiB took under {MIN_RELIABLE_SAMPLES} "
            f"sampling intervals ({SAMPLE_INTERVAL_S * 1000:.0f} ms): a short peak may be missed"
        )
    coarse = sorted({r.size_mib for r in results if r.min_ticks < MIN_RELIABLE_TICKS})
    if coarse:
        found.append(
            f"server CPU for {', '.join(map(str, coarse))} MiB rests on under "
            f"{MIN_RELIABLE_TICKS} clock ticks ({1000 / CLOCK_TICKS_PER_S:.0f} ms each)"
        )
    return found


def upload_targets(results: list[CaseResult]) -> list[dict]:
    """Each upload target, with what was measured and whether it holds."""
    targets = []
    at_size = [r for r in results if r.size_mib == TARGET_SIZE_MIB]
    for result in at_size:
        for reference, bound in ((CEILING, TARGET_CEILING_RATIO), (PLUGIN, TARGET_PLUGIN_RATIO)):
            ratio = result.ratio(MIDDLEWARE, reference)
            if ratio is not None:
                targets.append(
                    {
                        "target": f"{TARGET_SIZE_MIB} MiB {result.kind}: mw/{reference} >= {bound}",
                        "measured": round(ratio, 2),
                        "met": ratio >= bound,
                    }
                )
    for server in (MIDDLEWARE, MIDDLEWARE_S3, MIDDLEWARE_GCS):
        measured = [r.max_peak_growth_mib(server) for r in results if server in r.servers]
        if measured:
            worst = max(measured)
            targets.append(
                {
                    "target": f"{SHORT[server]}: memory growth < {TARGET_GROWTH_MIB} MiB "
                    "at every size",
                    "measured": worst,
                    "met": worst < TARGET_GROWTH_MIB,
                }
            )
    return targets


def passthrough_targets(passthrough: dict) -> list[dict]:
    targets = []
    for row in passthrough["results"]:
        ratio = row["cpu_ratio"]
        targets.append(
            {
                "target": f"pass-through {row['method']}, {row['clients']} client(s): CPU/request "
                f"<= {TARGET_PASSTHROUGH_CPU_RATIO} x bare Kinto",
                "measured": round(ratio, 3),
                "met": ratio <= TARGET_PASSTHROUGH_CPU_RATIO,
            }
        )
    return targets


def print_targets(targets: list[dict]) -> None:
    print("Targets:")
    for target in targets:
        print(
            f"  {'MET   ' if target['met'] else 'MISSED'}  {target['target']}: {target['measured']}"
        )


def write_json(name: str, document: dict) -> None:
    """``benchmarks/results/NAME.json``."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Results written to {path}")


PASSTHROUGH_HEADER = [
    "request",
    "clients",
    "runs",
    "bare CPU ms",
    "wrapped CPU ms",
    "CPU ratio",
    "95% CI",
    "bare req/s",
    "wrapped req/s",
    "req/s ratio",
]


def passthrough_rows(result: dict) -> list[list[str]]:
    """One row per (method, number of clients), in :data:`PASSTHROUGH_HEADER`'s order."""
    return [
        [
            cell["method"],
            str(cell["clients"]),
            str(cell["runs"]),
            f"{cell['bare']['cpu_ms_per_request']:.3f}",
            f"{cell['wrapped']['cpu_ms_per_request']:.3f}",
            f"{cell['cpu_ratio']:.3f}",
            "{:.3f}-{:.3f}".format(*cell["cpu_ratio_95ci"]),
            f"{cell['bare']['rps']:.0f}",
            f"{cell['wrapped']['rps']:.0f}",
            f"{cell['rps_ratio']:.3f}",
        ]
        for cell in result["results"]
    ]


def print_passthrough(result: dict) -> None:
    print(
        f"Pass-through: a small record, bare Kinto against wrapped, gunicorn {result['gunicorn']}:"
    )
    print(rst_table(PASSTHROUGH_HEADER, passthrough_rows(result)))
    others = [cell["other_cores"] for cell in result["results"]]
    clients = max(cell["clients"] for cell in result["results"])
    print(
        f"CPU ms: the server's CPU per request (/proc), median over {result['rounds']} rounds of "
        f"{result['requests_per_batch']} requests per server; 1 client: alternating\nrequest "
        f"by request, {clients} clients: a batch to each server in turn. Ratios (wrapped/bare): "
        "medians of the rounds' ratios;\n95% CI: of the CPU ratio. Other processes used "
        f"{statistics.median(other['median'] for other in others):.2f} cores (median; max "
        f"{max(other['max'] for other in others):.2f}) of the machine's {os.cpu_count()} "
        "meanwhile.\nDispatch alone (in-process, around a no-op app): "
        + ", ".join(f"{m} {us:.2f} µs" for m, us in result["dispatch_alone_us"].items())
        + "."
    )
    print()
