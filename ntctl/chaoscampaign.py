"""A chaos campaign: its trials from boot to verdict, the template root they start
from, and the campaign loop (jobs, Ctrl+C). ntctl/chaosrun.py holds the machine
plumbing, ntctl/chaosoracle.py the verdict, ntctl/chaosreport.py the report."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ntctl import chaosoracle as oracle
from ntctl.chaosplan import Draw
from ntctl.chaosrun import (
    BOOT_TIMEOUT,
    GONE,
    HIVES,
    LOGON_WAIT,
    BootFailed,
    Interrupted,
    Kill,
    Lab,
    Trial,
    kill_machine,
    shutdown_machine,
    wait_gone,
)


# -- one trial, start to finish ------------------------------------------------------
def run_trial(lab: Lab, d: Draw) -> dict:
    """The trial's record for the report: draw, kill, state, prediction, observation,
    anomalies. Always stops its machines; an interrupt propagates after that."""
    t = Trial(lab, d)
    result: dict[str, Any] = {"index": d.index, "draw": d.public(), "root": str(t.root)}
    result["_started"] = time.monotonic()
    anomalies: list[str] = []
    try:
        t.prepare()
        t.boot = lab.spawn_boot(t.root)
        try:
            k = t.kill()
        except BootFailed as exc:  # before any kill: the machine failed by itself
            t.shutdown()
            wait_gone(lab, t.root, GONE)
            result["outcome"] = "no kill"
            return _finish(lab, t, result, "anomaly", [f"before the kill: {exc}"], "")
        result["kill"] = {"pid": k.pid, "moment_ms": k.moment_ms, "done": k.done}
        try:
            stopped_by_itself = t.wait_outcome(k)
        except BootFailed as exc:
            anomalies.append(str(exc))
            stopped_by_itself = True
            kill_machine(t.root)
        left = wait_gone(lab, t.root, GONE)
        if left:
            anomalies.append(f"{len(left)} processes left after the machine stopped: {left}")
        t.log.poll()
        verdict, outcome = _judge(t, k, stopped_by_itself, result, anomalies)
        if verdict != "missed":
            anomalies += next_boot(lab, t, outcome)
        return _finish(lab, t, result, verdict, anomalies, "")
    finally:
        t.close()
        if lab.stop.is_set():
            kill_machine(t.root)
            wait_gone(lab, t.root, GONE)


def _finish(
    lab: Lab, t: Trial, result: dict, verdict: str, anomalies: list[str], note: str
) -> dict:
    result["seconds"] = round(time.monotonic() - result.pop("_started"), 2)
    if anomalies:
        verdict = "anomaly"
    result.update(verdict=verdict, anomalies=anomalies)
    if note:
        result["note"] = note
    result.setdefault("outcome", "missed" if verdict == "missed" else "?")
    if verdict != "anomaly" and not lab.keep:
        t.close()
        wait_gone(lab, t.root, GONE)
        shutil.rmtree(t.root, ignore_errors=True)
        result.pop("root")
    return result


def _judge(
    t: Trial, k: Kill, stopped_by_itself: bool, result: dict, anomalies: list[str]
) -> tuple[str, Any]:
    from nt.logquery import iter_events

    boot_dir = t.log.boot_dir
    records = oracle.Records(list(iter_events(boot_dir)) if boot_dir else [])
    if not records.first("kernel.exit") and t.victim.image != "System":
        anomalies.append(f"the kernel's log of {boot_dir} has no kernel.exit")
    obs = read_dumps(t.root)
    obs.bugchecks = len(records.all("bugcheck"))
    obs.stopped_by_itself = stopped_by_itself
    obs.after = oracle.logged_after(records, k.t_kill)
    if t.logon_started:
        # a machine that stopped leaves a client's call to its deadline: no need to wait
        obs.logon_exit, obs.logon_text = t.logon_done(GONE if stopped_by_itself else LOGON_WAIT)
        result["logon"] = {"exit": obs.logon_exit, "message": obs.logon_text}
    result["outcome"] = obs.label()
    result["observed"] = {"bugchecks": obs.bugchecks, "dumps": len(obs.dumps)}
    if obs.dumps:
        d = obs.dumps[0]
        result["observed"].update(
            code=d.get("bugcheck_code"),
            p1_text=(d.get("decoded") or {}).get("p1_text"),
            culprit=(d.get("faulting_process") or {}).get("pid"),
        )
    # In the shutdown phase the machine stopping is the point; in the others it is a miss.
    stops = records.all("bugcheck")
    if t.d.phase != "shutdown":
        stops += records.all("shutdown.begin")
    earlier = [e for e in stops if oracle.epoch(e["ts"]) < k.t_kill]
    death = oracle.death_of(records, t.victim, k.pid)
    if not k.done or earlier or (death.exited is not None and death.exited < k.t_kill):
        why = k.missed or (
            "the machine was already stopping" if earlier else "the victim had already exited"
        )
        result.update(outcome="missed", note=why)
        anomalies += [u for u in (f"unreadable dump {x}" for x in obs.unreadable)]
        return "missed", None
    state = oracle.victim_state(records, t.victim, death, k.t_kill, t.d.method)
    # Once the kernel ends every process (SIGTERM), the kill races a clean exit.
    raced = state.get("stopping") is not False and t.d.phase == "shutdown"
    if t.victim.image != "System":
        if death.exited is None:
            anomalies.append("the kernel never reported the victim's exit")
        elif death.status != oracle.expected_exit_status(t.d.method, t.d.status) and not raced:
            anomalies.append(f"exit status {death.status:#x} after {t.d.method}")
    result["state"] = state
    predicted, outcome, diff = oracle.judge(t.victim.role, state, obs, death, t.lab.profile)
    result["predicted"] = [o.label() for o in predicted]
    # a boundary only where the records leave the outcome open (not any unordered event)
    result["boundary"] = len(predicted) > 1
    anomalies += diff
    return "ok", outcome


def read_dumps(root: Path) -> oracle.Observed:
    """Every dump of the root, each read as ``ntctl analyze`` reads it."""
    from nt import dump
    from ntctl.analyze import analyze_json

    obs = oracle.Observed(0, [])
    for path in sorted((root / "C" / "Windows" / "Minidump").glob("*.json")):
        try:
            record = dump.read_dump(path)
            analyze_json(record)
            obs.dumps.append(record)
        except Exception:  # noqa: BLE001  any failure to read is what we report
            obs.unreadable.append(path.name)
    return obs


def next_boot(lab: Lab, t: Trial, outcome: Any) -> list[str]:
    """Boot the same root again: it must come up (with the events the table names for a
    boot after this one), shut down, and leave nothing."""
    from nt.logquery import iter_events

    boot = lab.spawn_boot(t.root)
    try:
        code = boot.wait(BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        lab.done_with(boot)
    if code != 0:
        kill_machine(t.root)
        wait_gone(lab, t.root, GONE)
        return [f"the next boot of the root did not come up (ntctl boot exit {code})"]
    events = list(iter_events((t.root / "logs" / "latest").resolve(), image="System"))
    return oracle.next_boot_anomalies(outcome, events) + shutdown_machine(lab, t.root)


def make_template(lab: Lab) -> Path:
    """Boot a fresh root once and shut it down: trials start from copies of its hives,
    so each pays for a boot, not for the first boot's configuration import."""
    root = lab.scratch / "template"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    boot = lab.spawn_boot(root)
    try:
        code = boot.wait(BOOT_TIMEOUT)
    except BaseException:  # Ctrl+C (or a boot that never ends): stop what was started
        boot.kill()
        kill_machine(root)
        wait_gone(lab, root, GONE)
        raise
    finally:
        lab.done_with(boot)
    left = shutdown_machine(lab, root) if code == 0 else []
    if code != 0:
        kill_machine(root)
        wait_gone(lab, root, GONE)
    if code != 0 or left or not (root / HIVES / "SYSTEM").exists():
        raise BootFailed(
            f"a fresh machine does not boot (ntctl boot exit {code}); see {root / 'logs'}"
        )
    return root


def safe_trial(lab: Lab, d: Draw) -> dict | None:
    """run_trial, with a runner failure reported as the trial's anomaly; None when the
    campaign was interrupted before the trial could finish."""
    try:
        return run_trial(lab, d)
    except Interrupted:
        return None
    except Exception as exc:  # noqa: BLE001  a runner bug must not lose the campaign
        kill_machine(lab.scratch / f"trial-{d.index:05d}")
        return {
            "index": d.index,
            "draw": d.public(),
            "verdict": "anomaly",
            "outcome": "runner error",
            "anomalies": [f"the runner failed: {type(exc).__name__}: {exc}"],
        }


def run_campaign(
    lab: Lab,
    draws: Sequence[Draw],
    jobs: int,
    on_done: Callable[[dict], None] = lambda _: None,
) -> tuple[list[dict], list[int]]:
    """(finished trials, indices not run). At most ``jobs`` trials are in flight, so a
    Ctrl+C stops those machines and leaves the rest of the campaign not run."""
    results: list[dict] = []
    queue = list(draws)
    running: dict[Future, Draw] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="chaos-trial")
    try:
        while queue or running:
            while queue and len(running) < jobs and not lab.stop.is_set():
                d = queue.pop(0)
                running[pool.submit(safe_trial, lab, d)] = d
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for f in done:
                running.pop(f)
                if (r := f.result()) is not None:
                    results.append(r)
                    on_done(r)
    except KeyboardInterrupt:
        lab.stop.set()  # every trial in flight stops its machine and returns
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        try:
            pool.shutdown(wait=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    not_run = [d.index for d in queue]
    for f, d in running.items():
        r = f.result()
        if r is None:
            not_run.append(d.index)
        else:
            results.append(r)
    return results, sorted(not_run)
