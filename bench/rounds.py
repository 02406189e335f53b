"""Rounds of load against one server: what a round measures (rate, latency, errors, and
the CPU the server, the load generator and everything else used meanwhile) and how the
rounds of several servers alternate."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from flows import rotate
from report import Sample, system_cpu_seconds
from run import run_wrk
from servers import CLIENT_CPU, Running

# A load returns (rate, seconds, p50 ms, p99 ms, errors, client CPU seconds).
Load = Callable[[], tuple[float, float, float, float, int, float]]
Measure = Callable[[int], Sample]  # one round of ``duration`` seconds


def measured(server: Running, load: Load) -> Sample:
    """Runs ``load`` (returning rate, seconds, p50 ms, p99 ms, errors, client CPU seconds)
    and adds the CPU the server and everything else on the machine used meanwhile."""
    cpu0, sys0 = server.cpu_seconds(), system_cpu_seconds()
    rate, seconds, p50, p99, errors, client = load()
    server_cpu = server.cpu_seconds() - cpu0
    other = max(0.0, system_cpu_seconds() - sys0 - server_cpu - client)
    return Sample(rate, p50, p99, errors, server_cpu / seconds, client / seconds, other / seconds)


def wrk_measure(
    server: Running,
    path: str,
    connections: int,
    script: Path | None = None,
    args: Sequence[str] = (),
) -> Measure:
    def one(duration: int) -> Sample:
        def load() -> tuple[float, float, float, float, int, float]:
            w = run_wrk(
                server.url + path,
                duration=duration,
                connections=connections,
                threads=2,
                script=script,
                script_args=args,
                cpu=CLIENT_CPU,
            )
            # introspect.lua counts answers without "active": true.
            inactive = re.search(r"^Inactive answers: (\d+)$", w.output, re.MULTILINE)
            errors = w.non_2xx + w.socket_error_count + (int(inactive[1]) if inactive else 0)
            return w.requests_per_sec, w.seconds, w.p50, w.p99, errors, w.client_cpu_seconds

        return measured(server, load)

    return one


def rotation_measure(
    server: Running, login: Callable[[], str], authorization: str, chains: int, extra: str = ""
) -> Measure:
    """Fresh chains every round: an answer in flight when wrk stops has rotated a token
    the script never saw, so a chain cannot be carried over to the next round."""

    def one(duration: int) -> Sample:
        tokens = [login() for _ in range(chains)]

        def load() -> tuple[float, float, float, float, int, float]:
            r = rotate(server.url + "/token", authorization, tokens, duration, extra)
            # Every non-2xx answer is also a failure of rotate.lua's checks.
            errors = r.failures + r.wrk.socket_error_count
            if r.first_failure:
                print(f"    rotation failure: {r.first_failure}", flush=True)
            return r.rate, r.wrk.seconds, r.wrk.p50, r.wrk.p99, errors, r.wrk.client_cpu_seconds

        return measured(server, load)

    return one


def alternate(
    args: argparse.Namespace, title: str, measures: dict[str, Measure]
) -> dict[str, list[Sample]]:
    """Warm-up, then ``args.rounds`` rounds over the measures, flipping the order every
    round; the samples of each measure, by label."""
    names = list(measures)
    for name in names if args.warmup else []:
        print(f"  {title}: warm-up {name} ({args.warmup} s)", flush=True)
        measures[name](args.warmup)
    out: dict[str, list[Sample]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            sample = measures[name](args.duration)
            print(f"  {title}: round {r + 1} {name}: {sample.describe()}", flush=True)
            out[name].append(sample)
    return out
