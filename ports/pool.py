"""Request threads of a port, with CSRSRV's growth rule (csrsrv/api.c).

``CsrpCheckRequestThreads``: before a thread handles a request it decrements the count
of idle ("static") threads; when that reaches zero and fewer than ``max_threads``
threads exist, one more thread is started. The first thread counts as both idle and
created (1, 1). Threads never exit. A fixed pool (smss's two SmApiPort threads, the one
SbApiPort thread) is the same rule with ``max_threads == initial``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class RequestThreadCounters:
    """CsrpStaticThreadCount / CsrpDynamicThreadTotal, guarded by one lock."""

    def __init__(self, initial: int, max_threads: int) -> None:
        if not 1 <= initial <= max_threads:
            raise ValueError("need 1 <= initial <= max_threads")
        self.static_count = initial
        self.dynamic_total = initial
        self.max_threads = max_threads
        self._lock = threading.Lock()

    def check_request_threads(self) -> bool:
        """A thread takes a request; True when a new thread must be started."""
        with self._lock:
            self.static_count -= 1
            if self.static_count == 0 and self.dynamic_total < self.max_threads:
                self.static_count += 1
                self.dynamic_total += 1
                return True
            return False

    def request_done(self) -> None:
        with self._lock:
            self.static_count += 1


class WorkerPool:
    """Threads blocked on a queue (NtReplyWaitReceivePort), growing by the rule above."""

    def __init__(
        self,
        name: str,
        handle: Callable[[Any], None],
        initial: int = 1,
        max_threads: int = 1,
    ) -> None:
        self.name = name
        self.counters = RequestThreadCounters(initial, max_threads)
        self._handle = handle
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._initial = initial

    def start(self) -> None:
        for _ in range(self._initial):
            self._spawn()

    def submit(self, item: Any) -> None:
        self._queue.put(item)

    def backlog(self) -> int:
        return self._queue.qsize()

    @property
    def size(self) -> int:
        return len(self._threads)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _spawn(self) -> None:
        t = threading.Thread(
            target=self._loop, name=f"{self.name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(t)
        t.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.counters.check_request_threads():
                self._spawn()
            try:
                self._handle(item)
            finally:
                self.counters.request_done()
