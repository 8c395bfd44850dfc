r"""samsrv: the SAM server's calls (MS-SAMR), without sockets; ``lsass.py`` serves them on
``\RPC Control\samss lpc``.

Every change needs an administrator or SYSTEM (the caller's token, from the kernel's
record of the calling process) and is audited in the Security log (4720 created, 4722
enabled, 4724 password reset, 4725 disabled, 4726 deleted, 4738 changed, 4767 unlocked).
"""

from __future__ import annotations

from datetime import UTC, datetime

from nt import security as sec
from nt.log import Logger
from nt.seaudit import audit_open_denied
from nt.status import NtStatus
from ports import samr
from ports.contract import ClientContext, Handler, HandlerResult
from processes.lsass import audit
from processes.lsass.msv1_0 import Busy, Msv1_0
from processes.lsass.sam import ACB_PW_EXPIRED, Sam, SamError, User


def _iso(seconds: float) -> str:
    if not seconds:
        return "Never"
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def may_administer(token: dict) -> bool:
    """SYSTEM, or a token whose Administrators group is enabled (not deny-only)."""
    if token.get("sid") == sec.LOCAL_SYSTEM:
        return True
    groups, deny = token.get("groups", []), token.get("deny_only", [])
    return sec.BUILTIN_ADMINISTRATORS in groups and sec.BUILTIN_ADMINISTRATORS not in deny


def _sam_call(fn):
    """SamError → its status; Busy (no hashing slot) → STATUS_INSUFFICIENT_RESOURCES."""

    def wrapper(self: SamServer, msg: dict, client: ClientContext) -> HandlerResult:
        try:
            return fn(self, msg, client)
        except SamError as exc:
            return exc.status
        except Busy:
            return NtStatus.STATUS_INSUFFICIENT_RESOURCES

    wrapper.__name__ = fn.__name__
    return wrapper


def _admin_only(fn):
    def wrapper(self: SamServer, msg: dict, client: ClientContext) -> HandlerResult:
        if not may_administer(client.token):
            self.log.warning(
                "sam.access_denied",
                api=fn.__name__,
                caller_pid=client.pid,
                caller_image=client.image,
            )
            audit_open_denied(
                self.log,
                client.token,
                server="Security Account Manager",
                object_type="SAM_DOMAIN",
                object_name=fn.__name__,
                desired=0,
                pid=client.pid,
                image=client.image,
            )
            return NtStatus.STATUS_ACCESS_DENIED
        return fn(self, msg, client)

    wrapper.__name__ = fn.__name__
    return wrapper


class SamServer:
    def __init__(self, sam: Sam, msv: Msv1_0, log: Logger, computer_name: str = "NTMODEL") -> None:
        self.sam, self.msv, self.log, self.computer_name = sam, msv, log, computer_name

    def handlers(self) -> dict[int, Handler]:
        return {api.number: getattr(self, api.name) for api in samr.SAMR_APIS}

    def _audit(self, event_id: int, client: ClientContext, user: User) -> None:
        subject = audit.Subject(client.token, client.pid, client.image)
        sid = self.sam.sid_of(user.rid)
        audit.account(self.log, event_id, subject, user.name, self.computer_name, sid)

    def summary(self, user: User) -> dict:
        return {
            "name": user.name,
            "rid": user.rid,
            "sid": self.sam.sid_of(user.rid),
            "enabled": user.enabled,
            "locked": self.sam.is_locked(user, self.sam.clock()),
            "admin": self.sam.is_admin(user.rid),
        }

    # -- reading ------------------------------------------------------------------------------
    def SamrEnumerateUsersInDomain(self, msg: dict, client: ClientContext) -> HandlerResult:
        with self.sam.lock:
            users = sorted(self.sam.users.values(), key=lambda u: u.rid)
            return {"users": [self.summary(u) for u in users]}

    @_sam_call
    def SamrQueryInformationUser2(self, msg: dict, client: ClientContext) -> HandlerResult:
        sam = self.sam
        with sam.lock:
            u = sam.get(msg["name"])
            return {
                "user": {
                    "name": u.name,
                    "full_name": u.full_name,
                    "comment": u.comment,
                    "rid": u.rid,
                    "sid": sam.sid_of(u.rid),
                    "enabled": u.enabled,
                    "locked": sam.is_locked(u, sam.clock()),
                    "groups": [f"S-1-5-32-{rid}" for rid in sam.alias_rids(u.rid)],
                    "password_last_set": _iso(u.password_last_set),
                    "password_must_change": bool(u.acb & ACB_PW_EXPIRED),
                    "account_expires": _iso(u.account_expires),
                    "last_logon": _iso(u.last_logon),
                    "logon_count": u.logon_count,
                    "bad_password_count": u.bad_password_count,
                    "last_bad_password": _iso(u.last_bad_password),
                    "lockout_time": _iso(u.lockout_time),
                }
            }

    def SamrQueryInformationDomain2(self, msg: dict, client: ClientContext) -> HandlerResult:
        p = self.sam.policy
        return {
            "domain": {
                "domain_sid": self.sam.domain_sid,
                "lockout_threshold": p.threshold,
                "lockout_duration": p.duration,
                "lockout_window": p.window,
                "allow_administrator_lockout": p.allow_admin_lockout,
                "users": len(self.sam.users),
                "next_rid": self.sam.next_rid,
            }
        }

    # -- changing -------------------------------------------------------------------------------
    @_admin_only
    @_sam_call
    def SamrSetInformationDomain(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.sam.set_policy(
            msg["lockout_threshold"], msg["lockout_duration"], msg["lockout_window"]
        )
        self.log.info("sam.policy", **{k: v for k, v in msg.items()})
        return {}

    @_admin_only
    @_sam_call
    def SamrCreateUser2InDomain(self, msg: dict, client: ClientContext) -> HandlerResult:
        password = msg["password"]
        phc = ""
        if password is not None:
            self.msv.check_new_password(password)
            phc = self.msv.hash_password(password)
        user = self.sam.create_user(msg["name"], phc, msg["admin"], msg["full_name"])
        self._audit(4720, client, user)
        self.log.info("sam.user_created", user=user.name, rid=user.rid, admin=msg["admin"])
        return {"rid": user.rid, "sid": self.sam.sid_of(user.rid)}

    @_admin_only
    @_sam_call
    def SamrDeleteUser(self, msg: dict, client: ClientContext) -> HandlerResult:
        user = self.sam.delete_user(msg["name"])
        self._audit(4726, client, user)
        self.log.info("sam.user_deleted", user=user.name, rid=user.rid)
        return {}

    @_admin_only
    @_sam_call
    def SamrSetInformationUser2(self, msg: dict, client: ClientContext) -> HandlerResult:
        sam = self.sam
        user = sam.get(msg["name"])
        if msg["password"] is not None:
            self.msv.check_new_password(msg["password"])
            sam.set_password_hash(user, self.msv.hash_password(msg["password"]))
            self._audit(4724, client, user)
        if msg["enabled"] != samr.UNCHANGED and bool(msg["enabled"]) != user.enabled:
            sam.set_enabled(user, bool(msg["enabled"]))
            self._audit(4722 if msg["enabled"] else 4725, client, user)
        if msg["admin"] != samr.UNCHANGED and bool(msg["admin"]) != sam.is_admin(user.rid):
            sam.set_admin(user, bool(msg["admin"]))
            self._audit(4738, client, user)  # Windows adds 4732/4733 on the group
        if msg["password_must_change"] != samr.UNCHANGED:
            sam.set_must_change(user, bool(msg["password_must_change"]))
            self._audit(4738, client, user)
        if msg["unlock"] and sam.unlock(user):
            self._audit(4767, client, user)
        return {}
