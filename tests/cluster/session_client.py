"""Many LSM requests at once from one attached client (Terminal Services' listener
accepting several connections), one JSON line out. Used by the session tests and the
session benchmark: ``python -m tests.cluster.session_client ROOT new 10`` or
``... ROOT logoff 2 3 4`` or ``... ROOT serial 10``."""

from __future__ import annotations

import json
import sys
import threading
import time

from ntctl.machine import Machine
from ports import lsm


def _one(m: Machine, what: str, arg: int, out: list, i: int) -> None:
    t0 = time.monotonic()
    conn = lsm.LsmConnect(m.lpc)
    try:
        reply = lsm.RpcLogoff(conn, arg) if what == "logoff" else lsm.RpcCreateSession(conn)
        out[i] = {"status": reply.status, **reply.body, "s": time.monotonic() - t0}
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    root, what, *args = argv
    with Machine(root, session=1) as m:
        if what == "serial":
            out: list = [None] * int(args[0])
            t0 = time.monotonic()
            for i in range(len(out)):
                _one(m, "new", 0, out, i)
        else:
            targets = [int(a) for a in args] if what == "logoff" else [0] * int(args[0])
            out = [None] * len(targets)
            threads = [
                threading.Thread(target=_one, args=(m, what, arg, out, i))
                for i, arg in enumerate(targets)
            ]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        took = time.monotonic() - t0
        print(json.dumps({"results": out, "s": took, "t0": time.time() - took}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
