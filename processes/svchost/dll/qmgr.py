"""qmgr.dll: Background Intelligent Transfer Service (BITS, svchost -k netsvcs).

Automatic (Delayed Start): Start=2 with DelayedAutostart=1, as Windows 7 and Windows 10
until 1709 ship it (later builds make it manual) — the model's delayed-auto-start example.
The SCM starts it after every auto-start service has settled, at low priority.

It transfers files in the background, throttled. A job is a JSON file in its queue
(``C:\\ProgramData\\Microsoft\\Network\\Downloader\\<name>.job``, where BITS keeps qmgr.db):
``{"display_name": ..., "files": [{"remote": "C:\\\\src\\\\a", "local": "C:\\\\dst\\\\a"}]}``
(``bitsadmin /create`` + ``/addfile`` + ``/resume``). Every poll moves at most ``CHUNK``
bytes of each job into a ``BIT<n>.tmp`` beside the destination, recording progress in
the job file (so a stop or a crash resumes where it was), then renames the temporary
files into place (``/complete``) and removes the job. States are BG_JOB_STATE's names;
a missing source puts the job in ERROR with 0x80070002, said once.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any, ClassVar

from nt import winsvc as ws
from nt.svcglobals import GlobalsSlot, ModelService, service_main

CHUNK = 1 << 20  # bytes per job per poll: "background" is a bandwidth cap
E_FILE_NOT_FOUND = 0x80070002


def queue_dir(g: Any) -> Path:
    return g.root / "C" / "ProgramData" / "Microsoft" / "Network" / "Downloader"


def temp_name(local: Path, job_path: Path, index: int) -> Path:
    """The transfer's ``BIT*.tmp``: stable across restarts, so a transfer resumes in it."""
    return local.parent / f"BIT{zlib.crc32(job_path.name.encode()):08X}{index:X}.tmp"


def write_job(path: Path, job: dict) -> None:
    """Atomically: a crash leaves the old job or the new one, never half of one."""
    tmp = path.with_suffix(".job.tmp")
    tmp.write_text(json.dumps(job, indent=1))
    os.replace(tmp, path)


class BitsService(ModelService):
    accepted: ClassVar[int] = ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_SHUTDOWN
    interval: ClassVar[float | None] = 1.0

    def on_start(self) -> None:
        queue_dir(self.g).mkdir(parents=True, exist_ok=True)
        jobs = sorted(queue_dir(self.g).glob("*.job"))
        self.log.info("bits.started", queued_jobs=len(jobs))

    def poll(self) -> None:
        for path in sorted(queue_dir(self.g).glob("*.job")):
            try:
                job = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(job, dict) and job.get("state") not in ("ERROR", "ACKNOWLEDGED"):
                self.transfer(path, job)

    def transfer(self, path: Path, job: dict) -> None:
        name = str(job.get("display_name") or path.stem)
        files = job.get("files") or []
        if job.get("state") in (None, "QUEUED", "SUSPENDED"):
            job["state"] = "TRANSFERRING"
            self.log.info("bits.job_transferring", job=name, files=len(files))
        for index, item in enumerate(files):
            remote = self.g.host_path(str(item.get("remote", "")))
            local = self.g.host_path(str(item.get("local", "")))
            tmp = temp_name(local, path, index)
            done = int(item.get("bytes_transferred", 0))
            try:
                total = remote.stat().st_size
                if done < total:
                    local.parent.mkdir(parents=True, exist_ok=True)
                    with (
                        open(remote, "rb") as src,
                        open(tmp, "r+b" if tmp.exists() else "wb") as dst,
                    ):
                        src.seek(done)
                        dst.seek(done)
                        data = src.read(CHUNK)
                        dst.write(data)
                        dst.flush()
                        os.fsync(dst.fileno())
                    item["bytes_transferred"] = done + len(data)
                    item["bytes_total"] = total
                    write_job(path, job)
                    return  # one chunk per job per poll
                item["bytes_total"] = total
            except OSError:
                job["state"] = "ERROR"
                job["error"] = E_FILE_NOT_FOUND
                write_job(path, job)
                self.log.error(
                    "bits.job_error",
                    job=name,
                    remote=str(item.get("remote")),
                    error=f"0x{E_FILE_NOT_FOUND:08X}",
                )
                return
        self.complete(path, job, name, files)

    def complete(self, path: Path, job: dict, name: str, files: list[dict]) -> None:
        """TRANSFERRED, then the owner's Complete: the files go into place."""
        for index, item in enumerate(files):
            local = self.g.host_path(str(item.get("local", "")))
            tmp = temp_name(local, path, index)
            if tmp.exists():
                os.replace(tmp, local)
            elif not local.exists():  # an empty source: nothing was written
                local.parent.mkdir(parents=True, exist_ok=True)
                local.touch()
        total = sum(int(i.get("bytes_total", 0)) for i in files)
        self.log.info("bits.job_acknowledged", job=name, files=len(files), bytes=total)
        path.unlink(missing_ok=True)


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(BitsService, _SLOT)
