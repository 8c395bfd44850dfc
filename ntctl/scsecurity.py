"""``ntctl sc sdshow|sdset``: a service's (or the SCM's, NAME ``scmanager``) security
descriptor in SDDL, through RQueryServiceObjectSecurity / RSetServiceObjectSecurity (MS-SCMR
opnums 5 and 4). sc.exe's layout: sdshow prints a blank line and the SDDL of the DACL;
sdset prints ``[SC] SetServiceObjectSecurity SUCCESS``."""

from __future__ import annotations

from pathlib import Path

from nt import security as sec
from ntctl import sc as layout
from ntctl.machine import QuickMachine
from ntctl.scclient import Sc, ScFailed, _name, checked, run
from ports import svcctl as sv

SCMANAGER = "scmanager"
ERROR_INVALID_ACL = 1336  # ConvertStringSecurityDescriptorToSecurityDescriptor's failure


def _handle(s: Sc, name: str, access: int) -> int:
    """The SCM's own handle for ``scmanager`` (reopened with the access), else the service's."""
    if name.lower() == SCMANAGER:
        reply = sv.ROpenSCManagerW(s.conn, sv.SC_MANAGER_CONNECT | access)
        return checked("OpenSCManager", reply)["handle"]
    return s.open(name, access)


def sdshow(args: list[str], root: Path, as_json: bool) -> None:
    """sc sdshow NAME"""
    name, _ = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = _handle(s, name, sec.READ_CONTROL)
        info = sec.DACL_SECURITY_INFORMATION
        body = checked(
            "QueryServiceObjectSecurity", sv.RQueryServiceObjectSecurity(s.conn, h, info)
        )
        sddl = sec.format_sddl(sec.sd_from_bytes(body["security_descriptor"]), info)
        return {"service": name, "sddl": sddl}, f"\n{sddl}\n"

    run(root, as_json, fn)


def sdset(args: list[str], root: Path, as_json: bool) -> None:
    """sc sdset NAME SDDL"""
    name, rest = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        if len(rest) != 1:
            raise ScFailed("SetServiceObjectSecurity", 87)
        text = rest[0]
        try:
            sd = sec.parse_sddl(text)
        except sec.SddlError as exc:
            raise ScFailed(
                "ConvertStringSecurityDescriptorToSecurityDescriptor", ERROR_INVALID_ACL
            ) from exc
        info = sec.DACL_SECURITY_INFORMATION if "D:" in text else 0
        info |= sec.OWNER_SECURITY_INFORMATION if text.startswith("O:") else 0
        info |= sec.GROUP_SECURITY_INFORMATION if "G:" in text.split("D:")[0] else 0
        if not info:
            raise ScFailed("SetServiceObjectSecurity", 87)
        access = (sec.WRITE_DAC if info & sec.DACL_SECURITY_INFORMATION else 0) | (
            sec.WRITE_OWNER if info & 0x3 else 0
        )
        h = _handle(s, name, access)
        data = sec.sd_to_bytes(sd)
        body = checked(
            "SetServiceObjectSecurity", sv.RSetServiceObjectSecurity(s.conn, h, info, data)
        )
        return body, layout.success("SetServiceObjectSecurity")

    run(root, as_json, fn)
