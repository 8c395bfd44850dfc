"""The live SCM clock (processes/services/timers.py)."""

from __future__ import annotations

import threading

from processes.services.timers import TimerThread


def test_timers_fire_in_order_under_the_lock_and_cancel():
    lock = threading.RLock()
    clock = TimerThread(lock)
    fired: list[str] = []
    done = threading.Event()
    try:
        clock.call_later(0.02, lambda: fired.append("b"))
        cancelled = clock.call_later(0.01, lambda: fired.append("x"))
        clock.call_later(
            0.0, lambda: fired.append("a") if lock._is_owned() else fired.append("unlocked")
        )
        clock.call_later(0.01, lambda: 1 / 0)  # a failing timer does not stop the thread
        clock.call_later(0.03, done.set)
        cancelled.cancel()
        assert done.wait(2)
        assert fired == ["a", "b"]
    finally:
        clock.close()
