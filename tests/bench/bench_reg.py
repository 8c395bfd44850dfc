"""reg_scale: ``ntctl reg import`` / ``export`` / ``query /s`` of a whole control set.

Data: ``tests/regscale.py``'s generated control set (20k keys, 39k values, 760 services,
device-property keys with ``hex(ffff0012)`` values, large binaries), written as a
``reg export`` file: UTF-16 LE with BOM, CRLF, wrapped hex, ~20 MB. It is imported under
``ControlSet005`` (a control set the running machine does not use).

Our path, each a real ``ntctl`` command against a booted machine (start-up included, what
a user waits for): ``reg import FILE`` (parse, ~1 MiB chunks staged on the kernel port,
one SQLite transaction at commit); ``reg export KEY FILE`` (snapshot read back in
chunks, written as UTF-16) — checked byte for byte against the imported file;
``reg query KEY\\Services /s`` (its output read through a pipe).

Floors, measured in the same run and interleaved: reading and decoding the file (UTF-16
→ str); a raw SQLite bulk insert of the same rows (the hive's schema, WAL,
``synchronous=FULL``, one transaction, ``executemany``); for export, a raw SELECT of the
same rows plus encoding and writing a file of the same size; for query, a raw recursive
SELECT of the Services subtree. Targets (issue 7): import ≤ 10 s, export ≤ 5 s,
query /s of Services ≤ 1 s.

Also the first boot from a binary hive (``--system-hive``) of the same size, in process:
``read_hive`` (log replay, dissect.regf walk) plus the kernel CM's first-boot import,
against reading the file and the raw bulk insert of the same rows.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from nt import regsnap
from nt.regpath import MAIN_SCHEMA
from tests.bench.common import BenchMachine, Figure, Reaper, Series, banner, finish, ratio
from tests.regfwriter import Key, build_hive
from tests.regscale import REPO, control_set, count, with_config

NAME = "reg_scale"
PREFIX = "HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet005"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--reg-reps", type=int, default=3, help="repetitions (default 3)")


def records_of(root: Key, prefix: str) -> list[regsnap.Record]:
    """The tree in export order (subkeys case-insensitively sorted), as records."""
    out: list[regsnap.Record] = []
    stack = [(root, prefix)]
    while stack:
        key, path = stack.pop()
        out.append((path, list(key.values)))
        subs = sorted(key.subkeys, key=lambda k: k.name.casefold())
        stack.extend((k, f"{path}\\{k.name}") for k in reversed(subs))
    return out


def _bulk_insert(db: Path, records: list[regsnap.Record]) -> float:
    """Raw SQLite: the same keys and values, one transaction, executemany."""
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;" + MAIN_SCHEMA)
    ids = {}
    keys, values = [], []
    for i, (path, vals) in enumerate(records, start=2):
        parent, _, name = path.rpartition("\\")
        ids[path] = i
        keys.append((i, ids.get(parent, 1), name, name.casefold(), 0))
        values += [(i, n, n.casefold(), t, r) for n, t, r in vals]
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO keys VALUES (1, NULL, 'SYSTEM', 'system', 0, 0)")
    conn.executemany("INSERT INTO keys VALUES (?, ?, ?, ?, ?, 0)", keys)
    conn.executemany('INSERT INTO "values" VALUES (?, ?, ?, ?, ?)', values)
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - t0


def _export_floor(db: Path, out: Path, size_chars: int) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, parent_id, name FROM keys").fetchall()
    vals = conn.execute('SELECT key_id, name, type, data FROM "values" ORDER BY key_id').fetchall()
    conn.close()
    out.write_bytes(("x" * size_chars).encode("utf-16-le"))
    assert rows and vals
    return time.perf_counter() - t0


def _query_floor(db: Path) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute(
        "WITH RECURSIVE sub(id) AS (SELECT id FROM keys WHERE name_folded = 'services' "
        "UNION ALL SELECT k.id FROM keys k JOIN sub ON k.parent_id = sub.id) "
        'SELECT v.* FROM sub JOIN "values" v ON v.key_id = sub.id'
    ).fetchall()
    conn.close()
    return time.perf_counter() - t0


def _timed(machine: BenchMachine, *args: str) -> float:
    t0 = time.perf_counter()
    r = machine.ntctl(*args, timeout=300)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"ntctl {' '.join(args)} failed:\n{r.stdout}\n{r.stderr[-2000:]}")
    return took


class _Log:
    def info(self, *a: object, **k: object) -> None:
        pass

    warning = error = info


def _first_boot(root: Path, hive: Path) -> float:
    import shutil

    from processes.kernel.cm import ConfigurationManager

    config = root / "fb"
    shutil.rmtree(config, ignore_errors=True)
    t0 = time.perf_counter()
    cm = ConfigurationManager(config, _Log())
    cm.init_system(REPO / "configs", [], False, system_hive=hive)
    took = time.perf_counter() - t0
    cm.close()
    return took


def run_first_boot(root: Path, reps: int) -> list[Figure]:
    top = with_config()
    control_set(top, name="ControlSet002")
    keys, values = count(top)
    hive = root / "SYSTEM"
    hive.write_bytes(build_hive(top))
    records = records_of(top, "SYSTEM")
    ours, floor = Series("first boot"), Series("floor")
    for _ in range(reps):
        ours.add([_first_boot(root, hive)])
        t0 = time.perf_counter()
        hive.read_bytes()
        floor.add([time.perf_counter() - t0 + _bulk_insert(root / "fb.db", records)])
    print(
        f"  --system-hive first boot ({keys:,} keys, {values:,} values, "
        f"{hive.stat().st_size / 1e6:.1f} MB): median {ours.median:.2f} s, p99 {ours.p99:.2f} s;"
        f" floor (file read + raw bulk insert) {floor.median:.2f} s"
    )
    return [
        Figure(NAME, "--system-hive first-boot import", ours.median, "s"),
        Figure(NAME, "--system-hive / floor", ratio(ours.median, floor.median), "×"),
    ]


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.reg."))
    machine = BenchMachine(root, reaper)
    top = Key("ROOT")
    cs = control_set(top)
    records = records_of(cs, PREFIX)
    keys, values = count(cs)
    data = b"\xff\xfe" + regsnap.dumps(records).encode("utf-16-le")
    src = root / "controlset.reg"
    src.write_bytes(data)
    print(f"control set: {keys:,} keys, {values:,} values, export {len(data) / 1e6:.1f} MB UTF-16")
    s = {n: Series(n) for n in ("import", "export", "query", "read", "insert", "xfloor", "qfloor")}
    exact = True
    try:
        machine.boot()
        for rep in range(args.reg_reps):
            t0 = time.perf_counter()
            src.read_bytes().decode("utf-16")
            s["read"].add([time.perf_counter() - t0])
            s["insert"].add([_bulk_insert(root / "floor.db", records)])
            if rep:
                _timed(machine, "reg", "delete", PREFIX)
            s["import"].add([_timed(machine, "reg", "import", str(src))])
            out = root / "out.reg"
            s["export"].add([_timed(machine, "reg", "export", PREFIX, str(out))])
            exact = exact and out.read_bytes() == data
            s["query"].add([_timed(machine, "reg", "query", PREFIX + "\\Services", "/s")])
            s["xfloor"].add([_export_floor(root / "floor.db", root / "floor.out", len(data) // 2)])
            s["qfloor"].add([_query_floor(root / "floor.db")])
            print(
                f"  rep {rep}: import {s['import'].reps[-1][0]:.2f} s, export "
                f"{s['export'].reps[-1][0]:.2f} s, query /s {s['query'].reps[-1][0]:.2f} s; "
                f"floors: read+decode {s['read'].reps[-1][0]:.2f} s, bulk insert "
                f"{s['insert'].reps[-1][0]:.2f} s",
                flush=True,
            )
        machine.shutdown()
    finally:
        machine.shutdown()
        finish(reaper, root, args)
    imp_floor = s["read"].median + s["insert"].median
    for label, name in (("import", "import"), ("export", "export"), ("query /s", "query")):
        print(f"  {label:10s} median {s[name].median:6.2f} s  p99 {s[name].p99:6.2f} s")
    print(
        f"  floors: read+decode {s['read'].median:.2f} s + bulk insert {s['insert'].median:.2f} s"
        f" = {imp_floor:.2f} s; export {s['xfloor'].median:.2f} s; query {s['qfloor'].median:.3f} s"
    )
    print(f"  export byte-identical to the imported file: {exact}")
    first_boot: list[Figure] = []
    tmp = Path(tempfile.mkdtemp(prefix="ntbench.regf."))
    try:
        first_boot = run_first_boot(tmp, args.reg_reps)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return first_boot + [
        Figure(NAME, "export size", len(data) / 1e6, "MB"),
        Figure(NAME, "import median", s["import"].median, "s", "≤ 10 s", s["import"].median <= 10),
        Figure(NAME, "import / floor", ratio(s["import"].median, imp_floor), "×"),
        Figure(NAME, "export median", s["export"].median, "s", "≤ 5 s", s["export"].median <= 5),
        Figure(NAME, "export / floor", ratio(s["export"].median, s["xfloor"].median), "×"),
        Figure(NAME, "query /s Services", s["query"].median, "s", "≤ 1 s", s["query"].median <= 1),
        Figure(NAME, "query / floor", ratio(s["query"].median, s["qfloor"].median), "×"),
        Figure(NAME, "export byte-identical", int(exact), "", "= 1", exact),
    ]
