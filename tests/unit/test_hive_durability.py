"""kill -9 of a hive writer loses no acknowledged write and corrupts nothing (§6.7 R1).

The harness lives in ``tests/bench/bench_hive_kill.py`` (``--kills 1000`` for the figure);
here it runs 40 kills, half at a random 10–200 ms after spawn and half mid-loop.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from nt.hive import Registry
from tests.bench.bench_hive_kill import BENCH, MIRROR, check_hive, run_kills


def test_sigkill_during_writes_loses_no_acknowledged_write_and_corrupts_nothing(
    tmp_path: Path,
) -> None:
    seed = random.SystemRandom().randrange(2**32)
    start = time.monotonic()
    res = run_kills(40, tmp_path, seed=seed, budget=60.0)
    context = f"seed {seed}: {res.errors[:5]}"
    assert res.kills == 40, context
    assert res.errors == [], context
    assert (res.corrupt, res.lost, res.torn) == (0, 0, 0), context
    assert res.midloop_kills > 0 and res.startup_kills > 0, context
    assert res.acked > 0, context  # the writer did get through writes before being killed
    assert time.monotonic() - start < 60


def test_checker_reports_a_lost_acknowledged_write(tmp_path: Path) -> None:
    config = tmp_path / "config"
    with Registry(config) as reg:
        for key in (BENCH, MIRROR):
            reg.create_key(key)
            reg.set_value(key, "Seq", 11, 5)
        reg.create_key(BENCH + r"\K05")
        reg.set_value(BENCH + r"\K05", "Data", 3, (5).to_bytes(8, "little"))
    assert check_hive(config, last_acked=5).lost is False
    assert check_hive(config, last_acked=6).lost is True


def test_checker_reports_a_torn_transaction(tmp_path: Path) -> None:
    config = tmp_path / "config"
    with Registry(config) as reg:
        reg.create_key(MIRROR)
        reg.set_value(BENCH, "Seq", 11, 3)
        reg.set_value(MIRROR, "Seq", 11, 2)
        reg.create_key(BENCH + r"\K03")
        reg.set_value(BENCH + r"\K03", "Data", 3, (3).to_bytes(8, "little"))
    assert check_hive(config, last_acked=3).torn is True


def test_checker_reports_a_corrupt_system_hive(tmp_path: Path) -> None:
    config = tmp_path / "config"
    Registry(config).close()
    (config / "SYSTEM").write_bytes(b"\xde\xad" * 4096)
    assert check_hive(config, last_acked=0).corrupt is True
