"""svcorder: the auto-start order of a 750-service Windows-10-shaped configuration.

Our path: ``nt.svcorder.compute_order`` over the entries of ``tests/fixtures/win10.py``
(groups, GroupOrderList tags, DependOnService/DependOnGroup, delayed auto-start), with
the boot and system drivers as running, as the SCM calls it. Reading the registry is not
in the timed part (the SCM reads its database once, before ordering).

A second figure orders every entry that is not disabled (start types 0–3, nothing
running): ~650 positions instead of the ~130 auto-start ones, the worst case.

Floor: ``sorted()`` of the same entries by (group index, tag index, name): the order with
no dependency or explanation work, measured in the same run, interleaved.
Target (issue 7): median ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import time

from nt.svcorder import compute_order
from tests.bench.common import Figure, Series, banner, ratio
from tests.fixtures.win10 import win10_control_set

NAME = "svcorder"
TARGET_MS = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--order-services", type=int, default=750, help="services (default 750)")
    g.add_argument("--order-calls", type=int, default=50, help="calls per repetition")
    g.add_argument("--order-reps", type=int, default=5, help="repetitions")


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    config = win10_control_set(services=args.order_services)
    entries = config.entries()
    running = [e.name for e in entries if e.start in (0, 1)]
    groups = {g.upper(): i for i, g in enumerate(config.group_list)}
    tags = {g.upper(): v for g, v in config.group_order.items()}

    def floor_key(e):
        vector = tags.get(e.group.upper(), ())
        tag = vector.index(e.tag) if e.tag in vector else len(vector)
        return (groups.get(e.group.upper(), len(groups) + (not e.group)), tag, e.name.upper())

    ours, every, floor = Series("compute_order"), Series("all"), Series("sorted()")
    all_types = {0, 1, 2, 3}
    result = compute_order(entries, config.group_list, config.group_order, running=running)
    for _ in range(args.order_reps):
        o, a, f = [], [], []
        for _ in range(args.order_calls):
            t0 = time.perf_counter_ns()
            compute_order(entries, config.group_list, config.group_order, running=running)
            o.append((time.perf_counter_ns() - t0) / 1e6)
            t0 = time.perf_counter_ns()
            compute_order(entries, config.group_list, config.group_order, start_types=all_types)
            a.append((time.perf_counter_ns() - t0) / 1e6)
            t0 = time.perf_counter_ns()
            sorted(entries, key=floor_key)
            f.append((time.perf_counter_ns() - t0) / 1e6)
        ours.add(o)
        every.add(a)
        floor.add(f)
    print(
        f"{len(entries)} entries, {len(running)} boot/system drivers running, "
        f"{len(result.sequence)} started, {len(result.errors)} in error"
    )
    print(f"  compute_order ms: {ours.row()}")
    print(f"  every non-disabled entry ms: {every.row()}")
    print(f"  floor sorted() ms: {floor.row()}")
    med = ratio(ours.median, floor.median)
    print(f"  ratio: median {med:.1f}x  p99 {ratio(ours.p99, floor.p99):.1f}x")
    return [
        Figure(
            NAME,
            f"order of {len(entries)} services median",
            ours.median,
            "ms",
            f"≤ {TARGET_MS:.0f} ms",
            ours.median <= TARGET_MS,
        ),  # fmt: skip
        Figure(NAME, "order p99", ours.p99, "ms"),
        Figure(NAME, "order of every non-disabled entry median", every.median, "ms"),
        Figure(NAME, "floor sorted() median", floor.median, "ms"),
        Figure(NAME, "order / floor median", med, "×"),
    ]
