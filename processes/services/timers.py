"""The live SCM's clock: monotonic time and one timer thread.

Every timeout of the core is a timer (ScmCore takes a ``Clock``), so services.exe needs
one thread that runs due timers, each under the core's lock: the core is single-threaded
by design, its callers (port handlers, the kernel's exit events, this thread) take
``ScmCore.lock`` around every call. One heap and one thread for all timers, not a thread
per timer: a 750-service boot arms thousands.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from nt.log import get_logger

log = get_logger()


class TimerHandle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerThread:
    def __init__(self, lock: threading.RLock | threading.Lock, name: str = "ScmTimers") -> None:
        self._lock = lock
        self._heap: list[tuple[float, int, TimerHandle, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle()
        with self._cond:
            heapq.heappush(
                self._heap, (time.monotonic() + max(0.0, delay_s), next(self._seq), handle, fn)
            )
            self._cond.notify()
        return handle

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, handle, fn = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            with self._lock:
                if handle.cancelled:  # cancelled while we waited for the lock
                    continue
                try:
                    fn()
                except Exception:  # a timer must not kill the thread every timeout needs
                    log.exception("scm.timer_failed")
