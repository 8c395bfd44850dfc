"""``ntctl user rights NAME [--grant RIGHT]... [--revoke RIGHT]...``: the User Rights
Assignment of one account or group, like the resource kit's ``ntrights`` (MS-LSAD
LsarAdd/Remove/EnumerateAccountRights on lsass's ``\\RPC Control\\lsarpc``).

NAME is a local user, a built-in group (``Administrators``, ``Users``, ``Guests``,
``Everyone``, ``Authenticated Users``, ``LOCAL SERVICE``, ``NETWORK SERVICE``) or a SID.
The rights are the privileges (``SeShutdownPrivilege``...) and the logon rights
(``SeServiceLogonRight``...); a new logon's token reflects a change, one already made does
not (as on Windows).
"""

from __future__ import annotations

from nt import security as sec
from ntctl.machine import Machine
from ntctl.users import UsersError, _check, user_show
from ports import lsarpc

GROUPS = {
    "administrators": sec.BUILTIN_ADMINISTRATORS,
    "users": sec.BUILTIN_USERS,
    "guests": sec.BUILTIN_GUESTS,
    "everyone": sec.EVERYONE,
    "authenticated users": sec.AUTHENTICATED_USERS,
    "local service": sec.LOCAL_SERVICE,
    "localservice": sec.LOCAL_SERVICE,
    "network service": sec.NETWORK_SERVICE,
    "networkservice": sec.NETWORK_SERVICE,
}


def account_sid(m: Machine, name: str) -> str:
    if name.upper().startswith("S-1-"):
        return name.upper()
    bare = name.rpartition("\\")[2]
    return GROUPS.get(bare.lower()) or str(user_show(m, bare)["sid"])


def user_rights(m: Machine, name: str, grant: list[str], revoke: list[str]) -> dict:
    sid = account_sid(m, name)
    conn = lsarpc.LsaOpenPolicy(m.lpc)
    try:
        if grant:
            _check(lsarpc.LsaAddAccountRights(conn, sid, grant), f"user rights {name} --grant")
        if revoke:
            _check(lsarpc.LsaRemoveAccountRights(conn, sid, revoke), f"user rights {name} --revoke")
        rights = _check(lsarpc.LsaEnumerateAccountRights(conn, sid), f"user rights {name}")
    finally:
        conn.close()
    return {"name": name, "sid": sid, "granted": grant, "revoked": revoke, **rights}


def render(data: dict) -> str:
    lines = [f"Granting {r} to {data['name']} ... successful" for r in data["granted"]]
    lines += [f"Revoking {r} from {data['name']} ... successful" for r in data["revoked"]]
    lines += [f"Rights of {data['name']} ({data['sid']}):"]
    lines += [f"    {r}" for r in data["rights"]] or ["    (none)"]
    return "\n".join(lines)


__all__ = ["UsersError", "account_sid", "render", "user_rights"]
