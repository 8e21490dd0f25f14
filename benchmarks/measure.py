"""Measuring uploads: each one timed, with the server's CPU and memory read around it.

The servers take turns with the same file (A B C D, A B C D, ...), so that the runs of a
round share the machine's mood of the moment.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import requests

from client import GIB, MIB, TEXT, Payload, check_answer, make_payload, upload
from procstat import MemorySampler, cpu_times, process_tree, rss_kib
from report import print_run
from results import CaseResult, Run
from servers import Server


def _mib(kib: float) -> float:
    return round(kib / 1024, 1)


def measured_upload(
    session: requests.Session, server: Server, record_id: str, payload: Payload
) -> Run:
    """One upload, timed, with the server's CPU read and its memory sampled around it.

    Client CPU (this process, sampler thread included) is kept in the details: it tells
    whether the client, which shares the two cores with the server, was the bottleneck.
    """
    pids = process_tree(server.pid)
    before = rss_kib(pids)
    (user_before, system_before), client_before = cpu_times(pids), time.process_time()
    with MemorySampler(pids) as sampler:
        started = time.perf_counter()
        answer = upload(session, server.base_url, record_id, payload)
        seconds = time.perf_counter() - started
    user_after, system_after = cpu_times(pids)
    client_cpu = time.process_time() - client_before
    after = rss_kib(pids)
    check_answer(answer, server, payload)
    peak = max(sampler.peak_kib, after)
    user = user_after - user_before
    server_cpu = user + system_after - system_before
    gib = payload.size / GIB
    return Run(
        seconds=round(seconds, 4),
        mib_per_s=round(payload.size / MIB / seconds, 1),
        server_cpu_s=round(server_cpu, 2),
        server_user_s=round(user, 2),
        server_cpu_s_per_gib=round(server_cpu / gib, 2),
        server_user_s_per_gib=round(user / gib, 2),
        client_cpu_s=round(client_cpu, 3),
        rss_before_mib=_mib(before),
        rss_peak_mib=_mib(peak),
        rss_after_mib=_mib(after),
        peak_growth_mib=_mib(peak - before),
        samples=sampler.samples,
        processes=len(pids),
    )


def warm_up(session: requests.Session, servers: list[Server], workdir: Path) -> None:
    """Small uploads first, so that imports and first-request setup are not measured."""
    payload = make_payload(workdir / "warmup.bin", 64 * 1024)
    for server in servers:
        for _ in range(2):
            check_answer(upload(session, server.base_url, "r-warmup", payload), server, payload)
    payload.path.unlink()


#: Uploads smaller than this leave too little behind to wait for.
SETTLE_FROM_MIB = 64


def bench_case(
    session: requests.Session,
    servers: list[Server],
    workdir: Path,
    size_mib: int,
    kind: str,
    repeat: int,
    settle_s: float = 0.0,
) -> CaseResult:
    """``repeat`` rounds of uploads of one file, each round visiting every server in turn.

    After each upload of ``SETTLE_FROM_MIB`` or more, dirty pages are written out
    (``sync``) and the machine gets ``settle_s`` seconds, so that each upload starts from
    the same state. Without it, the kernel wrote back one server's file (after 30 s, or
    when memory ran short, which the plugin's uploads bring about) during whichever upload
    came later, on its CPU time and cores: measured, the ceiling right after the
    middleware's 512 MiB upload fell from ~520 to ~300 MiB/s, with twice the system CPU.
    """
    extension = "txt" if kind == TEXT else "bin"
    payload = make_payload(workdir / f"{kind}-{size_mib}mib.{extension}", size_mib * MIB, kind)
    result = CaseResult(size_mib, kind, tuple(server.name for server in servers))
    try:
        for index in range(1, repeat + 1):
            for server in servers:
                run = measured_upload(session, server, f"r-{size_mib}-{kind}", payload)
                result.runs[server.name].append(run)
                print_run(f"{size_mib} MiB {kind}, round {index}/{repeat}, {server.name}", run)
                if size_mib >= SETTLE_FROM_MIB:
                    os.sync()
                    time.sleep(settle_s)
    finally:
        payload.path.unlink()
    return result
