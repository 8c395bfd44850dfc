"""The Spooler service (spoolsv.exe's ServiceMain): print jobs through the spool folder.

A job arrives through ``\\RPC Control\\spoolss`` (ports/spoolss.py): StartDocPrinter writes
its shadow file ``FPnnnnn.SHD`` (the job's record: printer, document, user, datatype,
status, time) and an empty ``FPnnnnn.SPL`` in ``%SystemRoot%\\System32\\spool\\PRINTERS``;
WritePrinter appends to the .SPL and syncs it; EndDocPrinter marks it SPOOLED. Every poll
the spooler despools the oldest SPOOLED job of each printer to the printer's port —
``PORTPROMPT:`` (Microsoft Print to PDF) writes ``C:\\Users\\Public\\Documents\\<document>``,
a port that is a path writes that file, ``nul:`` discards — logs ``spool.job_printed`` and
deletes both files, unless the printer keeps printed jobs (PRINTER_ATTRIBUTE_KEEPPRINTEDJOBS
0x100 in its ``Attributes``). Jobs already in the folder at start (a stop or a crash with
jobs queued) are picked up again, as spoolsv does with its shadow files; an unfinished
SPOOLING job is deleted, as Windows deletes incomplete jobs at restart. Printers are the
keys of ``Control\\Print\\Printers``. The rendering (EMF, XPS, a driver) is not modelled:
the port receives the job's bytes (README, divergences).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from nt import winsvc as ws
from nt.evtlog import now_text
from nt.svcglobals import SYSTEM_CCS, GlobalsSlot, ModelService, service_main
from ports import epmap
from ports import spoolss as sp
from ports.client import PortError
from ports.contract import ClientContext, HandlerResult

PRINTERS_KEY = f"{SYSTEM_CCS}\\Control\\Print\\Printers"
PRINTER_ATTRIBUTE_KEEPPRINTEDJOBS = 0x100
DATATYPES = ("RAW", "TEXT", "NT EMF 1.008", "XPS_PASS")


@dataclass
class Job:
    job_id: int
    printer: str
    document: str
    datatype: str
    user: str
    status: str  # SPOOLING → SPOOLED → PRINTING → PRINTED
    size: int
    submitted: str


def spool_dir(g) -> Path:  # type: ignore[no-untyped-def]
    return g.system32 / "spool" / "PRINTERS"


def safe_name(document: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in " ._-()" else "_" for c in document).strip(" .")
    return cleaned or "Untitled"


class SpoolerService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "no rendering: the port receives the job's bytes; no http dependency",
    )
    accepted: ClassVar[int] = ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_SHUTDOWN
    interval: ClassVar[float | None] = 0.5

    def on_start(self) -> None:
        self.dir = spool_dir(self.g)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.jobs: dict[int, Job] = {}
        for shd in sorted(self.dir.glob("FP*.SHD")):
            self._recover(shd)
        self.next_id = max(self.jobs, default=0) + 1
        self.printers = self.load_printers()
        self.log.info("spool.started", printers=sorted(self.printers), queued_jobs=len(self.jobs))
        self.port = None
        if self.g.lpc is not None:
            self.port = self.g.lpc.create_port(
                sp.SPOOLSS_PORT_NAME, sp.SPOOLSS_PORT, self.handlers()
            )
            self._register(unregister=False)

    def _recover(self, shd: Path) -> None:
        try:
            job = Job(**json.loads(shd.read_text()))
        except (OSError, ValueError, TypeError):
            return
        if job.status == "SPOOLING":  # never ended: incomplete, deleted as Windows does
            self._delete(job)
            self.log.info("spool.job_incomplete_deleted", job_id=job.job_id, document=job.document)
            return
        if job.status == "PRINTING":
            job.status = "SPOOLED"
        self.jobs[job.job_id] = job

    def load_printers(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        try:
            names = self.g.registry.enum_keys(PRINTERS_KEY)
        except Exception:
            names = []
        for name in names:
            key = f"{PRINTERS_KEY}\\{name}"
            out[name.lower()] = {
                "name": str(self.g.value(key, "Name", name)),
                "port": str(self.g.value(key, "Port", "nul:")),
                "attributes": int(self.g.value(key, "Attributes", 0) or 0),
            }
        return out

    def _register(self, unregister: bool) -> None:
        """RpcEpRegister / RpcEpUnregister of spoolss with RpcEptMapper (best effort: the
        spooler serves its port whether or not the mapper runs)."""
        binding = "ncacn_np:[\\pipe\\spoolss]"
        entries = [epmap.entry(sp.SPOOLSS_INTERFACE, "1.0", binding, "Spooler")]
        try:
            conn = epmap.connect(self.g.lpc)
        except PortError as exc:
            self.log.warning("rpc.ep_register_failed", service=self.ctx.name, status=exc.status)
            return
        try:
            if unregister:
                epmap.RpcEpUnregister(conn, entries)
            else:
                epmap.RpcEpRegister(conn, entries, self.ctx.name)
        finally:
            conn.close()

    # -- files ------------------------------------------------------------------------------
    def _files(self, job_id: int) -> tuple[Path, Path]:
        return self.dir / f"FP{job_id:05d}.SHD", self.dir / f"FP{job_id:05d}.SPL"

    def _save(self, job: Job) -> None:
        shd, _ = self._files(job.job_id)
        tmp = shd.with_suffix(".SHD.tmp")
        tmp.write_text(json.dumps(asdict(job)))
        os.replace(tmp, shd)

    def _delete(self, job: Job) -> None:
        for path in self._files(job.job_id):
            path.unlink(missing_ok=True)

    # -- despooling -------------------------------------------------------------------------
    def poll(self) -> None:
        with self.lock:
            ready = sorted(
                (j for j in self.jobs.values() if j.status == "SPOOLED"), key=lambda j: j.job_id
            )
        busy: set[str] = set()
        for job in ready:
            if job.printer.lower() not in busy:
                busy.add(job.printer.lower())
                self.print_job(job)

    def output_path(self, job: Job, port: str) -> Path | None:
        if port.lower() == "nul:":
            return None
        if port.upper() == "PORTPROMPT:":
            return self.g.host_path(f"C:\\Users\\Public\\Documents\\{safe_name(job.document)}")
        return self.g.host_path(port)

    def print_job(self, job: Job) -> None:
        printer = self.printers.get(job.printer.lower(), {"port": "nul:", "attributes": 0})
        job.status = "PRINTING"
        self._save(job)
        _, spl = self._files(job.job_id)
        out = self.output_path(job, printer["port"])
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(spl.read_bytes())
        job.status = "PRINTED"
        with self.lock:
            if printer["attributes"] & PRINTER_ATTRIBUTE_KEEPPRINTEDJOBS:
                self._save(job)
            else:
                self._delete(job)
                self.jobs.pop(job.job_id, None)
        # Logged once the job is gone from the queue (or kept): the job is done.
        self.log.info(
            "spool.job_printed",
            job_id=job.job_id,
            document=job.document,
            printer=job.printer,
            port=printer["port"],
            size=job.size,
            owner=job.user,
            output=str(out) if out is not None else "",
        )

    def on_stop(self, control: int) -> None:
        """Stop serving and drop the port's name (the process exits after its only
        service; a name left behind would refuse the next start's port)."""
        if self.port is None:
            return
        self._register(unregister=True)
        self.port.stop()
        try:
            self.g.kernel.delete_object(sp.SPOOLSS_PORT_NAME)
        except Exception as exc:  # NtError: gone with the port already
            self.log.debug("spool.port_name_gone", why=str(exc))

    # -- the port ---------------------------------------------------------------------------
    def handlers(self) -> dict[int, object]:
        return {
            sp.RpcEnumJobs: self.RpcEnumJobs,
            sp.RpcStartDocPrinter: self.RpcStartDocPrinter,
            sp.RpcWritePrinter: self.RpcWritePrinter,
            sp.RpcEndDocPrinter: self.RpcEndDocPrinter,
        }

    def RpcEnumJobs(self, msg: dict, client: ClientContext) -> HandlerResult:
        if msg["printer"].lower() not in self.printers:
            return {"error": sp.ERROR_INVALID_PRINTER_NAME, "jobs": []}
        with self.lock:
            jobs = [asdict(j) for j in sorted(self.jobs.values(), key=lambda j: j.job_id)]
        return {
            "error": 0,
            "jobs": [j for j in jobs if j["printer"].lower() == msg["printer"].lower()],
        }

    def RpcStartDocPrinter(self, msg: dict, client: ClientContext) -> HandlerResult:
        printer = self.printers.get(msg["printer"].lower())
        if printer is None:
            return {"error": sp.ERROR_INVALID_PRINTER_NAME, "job_id": 0}
        if msg["datatype"].upper() not in DATATYPES:
            return {"error": sp.ERROR_INVALID_DATATYPE, "job_id": 0}
        user = str(client.token.get("user", "")) or client.image
        with self.lock:
            job = Job(
                self.next_id,
                printer["name"],
                msg["document"],
                msg["datatype"].upper(),
                user,
                "SPOOLING",
                0,
                now_text(),
            )
            self.next_id += 1
            self.jobs[job.job_id] = job
            self._files(job.job_id)[1].write_bytes(b"")
            self._save(job)
        self.log.info(
            "spool.job_started",
            job_id=job.job_id,
            document=job.document,
            printer=job.printer,
            owner=user,
        )
        return {"error": 0, "job_id": job.job_id}

    def RpcWritePrinter(self, msg: dict, client: ClientContext) -> HandlerResult:
        with self.lock:
            job = self.jobs.get(msg["job_id"])
            if job is None or job.status != "SPOOLING":
                return {"error": sp.ERROR_SPL_NO_STARTDOC, "written": 0}
            try:
                with open(self._files(job.job_id)[1], "ab") as fh:
                    fh.write(msg["data"])
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError:
                return {"error": sp.ERROR_NOT_ENOUGH_SERVER_MEMORY, "written": 0}
            job.size += len(msg["data"])
        return {"error": 0, "written": len(msg["data"])}

    def RpcEndDocPrinter(self, msg: dict, client: ClientContext) -> HandlerResult:
        with self.lock:
            job = self.jobs.get(msg["job_id"])
            if job is None or job.status != "SPOOLING":
                return {"error": sp.ERROR_SPL_NO_STARTDOC}
            job.status = "SPOOLED"
            self._save(job)
        self.log.info("spool.job_spooled", job_id=job.job_id, size=job.size)
        return {"error": 0}


_SLOT = GlobalsSlot()
push_globals = _SLOT.push
ServiceMain = service_main(SpoolerService, _SLOT)
