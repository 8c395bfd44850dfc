r"""lsasrv: the LSA server core, without sockets (``dll/win32/lsasrv/authport.c``,
``authpackage.c``). ``lsass.py`` puts it behind ``\LsaAuthenticationPort``.

A connection is a logon context (``LSAP_LOGON_CONTEXT``): trusted when the caller named
itself as a logon process and its token holds SeTcbPrivilege (LsaRegisterLogonProcess),
untrusted otherwise (LsaConnectUntrusted). The model lets an untrusted caller ask for
Network logons only (as LogonUser's network path does for an ordinary program); any
other logon type from it is STATUS_NOT_LOGON_PROCESS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from nt import security as sec
from nt.log import Logger
from nt.status import NtStatus
from ports import lsa
from ports.contract import PENDING, ClientContext, Handler, HandlerResult, Reply, invoke
from processes.lsass import audit
from processes.lsass.lsapolicy import LsaPolicy
from processes.lsass.msv1_0 import Busy, Msv1_0, Outcome
from processes.lsass.sam import Sam, SamError
from processes.lsass.session import LogonSessions, build_token

PACKAGES = {lsa.MSV1_0_PACKAGE_NAME.casefold(): 0, lsa.NEGOTIATE_PACKAGE_NAME.casefold(): 1}
PACKAGE_AUDIT_NAMES = {0: "NTLM", 1: "Negotiate"}
SERVED_LOGON_TYPES = (sec.Interactive, sec.Network, sec.Batch, sec.Service)


class LsaServer:
    def __init__(
        self,
        sam: Sam,
        msv: Msv1_0,
        log: Logger,
        *,
        computer_name: str = "NTMODEL",
        on_deregister: Callable[[ClientContext], None] | None = None,
        assign_token: Callable[[int, dict], int] | None = None,
        parent_of: Callable[[int], int | None] | None = None,
        policy: LsaPolicy | None = None,
    ) -> None:
        self.sam, self.msv, self.log = sam, msv, log
        self.policy = policy
        self.computer_name = computer_name
        self.sessions = LogonSessions()
        self.policy_notify: dict[int, set[int]] = {}
        self._on_deregister = on_deregister
        self._assign_token = assign_token
        self._parent_of = parent_of or unix_parent
        self.stall = 0.0  # fault injection (lsass.exe:stall_logon=SECONDS): a call in flight
        self.primary_tokens: dict[int, int] = {}  # pid → logon id of the token assigned to it

    def handlers(self) -> dict[int, Handler]:
        return {api.number: getattr(self, api.name) for api in lsa.LSA_APIS}

    def dispatch(self, api_number: int, message: Any, client: ClientContext) -> HandlerResult:
        """authport.c's switch: a number outside LSA_API_NUMBER is
        STATUS_INVALID_SYSTEM_SERVICE, not the port layer's STATUS_NOT_IMPLEMENTED."""
        api = lsa.LSA_AUTH_PORT.by_number().get(api_number)
        if api is None:
            return NtStatus.STATUS_INVALID_SYSTEM_SERVICE
        table: Mapping[int, Handler] = self.handlers()
        return invoke(api, table[api_number], message, client)

    # -- connections --------------------------------------------------------------------
    def accept(self, client: ClientContext) -> int | dict:
        """LsapCheckLogonProcess: a named logon process must hold SeTcbPrivilege."""
        name = client.info.get("logon_process_name", "")
        trusted = bool(name)
        if trusted and "SeTcbPrivilege" not in client.token.get("privileges", []):
            self.log.warning(
                "lsa.untrusted_logon_process",
                logon_process=name,
                caller_pid=client.pid,
                caller_image=client.image,
            )
            return NtStatus.STATUS_PORT_CONNECTION_REFUSED
        client.state.update(trusted=trusted, logon_process=name or "")
        self.log.info(
            "lsa.connect", caller_pid=client.pid, caller_image=client.image, trusted=trusted
        )
        return {"operational_mode": lsa.LSA_OPERATIONAL_MODE, "trusted": int(trusted)}

    def process_exited(self, pid: int, status: int = 0, image: str = "") -> None:
        """The kernel's exit event: a process that held an assigned token (a service's
        account, a --as child) closed its last handle to it; its logon session ends (4634)."""
        logon_id = self.primary_tokens.pop(pid, None)
        s = self.sessions.get(logon_id) if logon_id is not None else None
        if s is not None:
            self.sessions.remove(s.logon_id)
            audit.logoff(self.log, s.sid, s.user, s.domain, s.logon_id, s.logon_type)

    def closed(self, client: ClientContext) -> None:
        """The client is gone: the tokens it held are closed, their sessions end (4634)."""
        for s in self.sessions.end_connection(client.conn_id):
            audit.logoff(self.log, s.sid, s.user, s.domain, s.logon_id, s.logon_type)

    # -- the API ----------------------------------------------------------------------------
    def LsapLookupAuthenticationPackage(self, msg: dict, client: ClientContext) -> HandlerResult:
        package = PACKAGES.get(msg["package_name"].casefold())
        if package is None:
            return NtStatus.STATUS_NO_SUCH_PACKAGE
        return {"auth_package": package}

    def LsapDeregisterLogonProcess(self, msg: dict, client: ClientContext) -> HandlerResult:
        """Replied before processing (authport.c): the reply goes first, then the
        connection's context is dropped."""
        client.defer().complete(NtStatus.STATUS_SUCCESS, {})
        client.state["trusted"] = False
        if self._on_deregister is not None:
            self._on_deregister(client)
        return PENDING

    def LsapPolicyChangeNotify(self, msg: dict, client: ClientContext) -> HandlerResult:
        watchers = self.policy_notify.setdefault(msg["notify_class"], set())
        (watchers.add if msg["register"] else watchers.discard)(client.conn_id)
        return {}

    def LsapEnumLogonSessions(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"sessions": self.sessions.ids()}

    def LsapGetLogonSessionData(self, msg: dict, client: ClientContext) -> HandlerResult:
        session = self.sessions.get(msg["logon_id"])
        if session is None:
            return NtStatus.STATUS_NO_SUCH_LOGON_SESSION
        return {"session": session.data(self.computer_name)}

    def LsapLogonUser(self, msg: dict, client: ClientContext) -> HandlerResult:
        if msg["auth_package"] not in PACKAGE_AUDIT_NAMES:
            return NtStatus.STATUS_NO_SUCH_PACKAGE
        logon_type = msg["logon_type"]
        if logon_type not in SERVED_LOGON_TYPES:
            return NtStatus.STATUS_INVALID_PARAMETER
        if logon_type != sec.Network and not client.state.get("trusted"):
            return NtStatus.STATUS_NOT_LOGON_PROCESS
        if msg["assign_pid"] and (
            self._assign_token is None or self._parent_of(msg["assign_pid"]) != client.pid
        ):
            return NtStatus.STATUS_ACCESS_DENIED
        if self.stall:
            self.log.info("fault.stall_logon", seconds=self.stall, caller_pid=client.pid)
            time.sleep(self.stall)
        try:
            outcome = self.msv.logon(msg["user"], msg["password"])
        except Busy:
            self.log.warning("lsa.logon_busy", caller_pid=client.pid)
            return NtStatus.STATUS_INSUFFICIENT_RESOURCES
        subject = audit.Subject(client.token, client.pid, client.image)
        if outcome.status != NtStatus.STATUS_SUCCESS:
            self._audit_failure(msg, subject, outcome)
            return outcome.status
        return self._logon_success(msg, client, subject, outcome)

    def _logon_success(
        self, msg: dict, client: ClientContext, subject: audit.Subject, outcome: Outcome
    ) -> HandlerResult:
        user = outcome.user
        assert user is not None
        sid = self.sam.sid_of(user.rid)
        package = PACKAGE_AUDIT_NAMES[msg["auth_package"]]
        session = self.sessions.create(
            user=user.name,
            domain=self.computer_name,
            sid=sid,
            logon_type=msg["logon_type"],
            auth_package=package,
            session=msg["session"],
            conn_id=client.conn_id,
        )
        aliases = [f"S-1-5-32-{rid}" for rid in self.sam.alias_rids(user.rid)]
        everyone = [sid, *aliases, sec.EVERYONE, sec.AUTHENTICATED_USERS]
        if self.policy is not None and not self.policy.may_log_on(everyone, msg["logon_type"]):
            # LsapCheckLogonRights: the password was right, the logon type is not granted.
            self.sessions.remove(session.logon_id)
            refused = Outcome(NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED, 0, user)
            self._audit_failure(msg, subject, refused)
            return refused.status
        token = build_token(
            account=f"{self.computer_name}\\{user.name}",
            user_sid=sid,
            rid=user.rid,
            aliases=aliases,
            logon_type=msg["logon_type"],
            logon_id=session.logon_id,
            auth_package=package,
            privileges_of=self.policy.privileges_for if self.policy else sec.privileges_for,
        )
        audit.logon_success(
            self.log,
            subject,
            token,
            self.computer_name,
            user.name,
            msg["origin"],
            self.computer_name,
        )
        self.log.info(
            "lsa.logon",
            user=user.name,
            logon_type=msg["logon_type"],
            logon_id=session.logon_id,
            rehashed=outcome.rehashed,
        )
        if msg["assign_pid"] and self._assign_token is not None:
            status = self._assign_token(msg["assign_pid"], token)
            if status != NtStatus.STATUS_SUCCESS:
                self.sessions.remove(session.logon_id)  # the token went nowhere
                return status
            # The process holds the token now: its session ends with it (process_exited).
            self.primary_tokens[msg["assign_pid"]] = session.logon_id
        profile = {
            "logon_count": user.logon_count,
            "bad_password_count": user.bad_password_count,
            "password_last_set": _iso(user.password_last_set),
            "last_logon": _iso(user.last_logon),
        }
        return {"logon_id": session.logon_id, "token": token, "profile": profile}

    def _audit_failure(self, msg: dict, subject: audit.Subject, outcome: Outcome) -> None:
        user = outcome.user
        name = user.name if user is not None else msg["user"]
        sid = self.sam.sid_of(user.rid) if user is not None else "S-1-0-0"
        audit.logon_failure(
            self.log,
            subject,
            name=name,
            domain=msg["domain"] or self.computer_name,
            sid=sid,
            status=outcome.status,
            sub_status=outcome.sub_status,
            logon_type=msg["logon_type"],
            origin=msg["origin"],
            package=PACKAGE_AUDIT_NAMES[msg["auth_package"]],
            workstation=self.computer_name,
        )
        if outcome.locked_now and user is not None:
            audit.account(self.log, 4740, subject, user.name, self.computer_name, sid)

    def LsapCallAuthenticationPackage(self, msg: dict, client: ClientContext) -> HandlerResult:
        if msg["auth_package"] != 0:
            return NtStatus.STATUS_NO_SUCH_PACKAGE
        if msg["message_type"] != lsa.MsV1_0ChangePassword:
            return NtStatus.STATUS_INVALID_PARAMETER
        try:
            outcome = self.msv.change_password(
                msg["account"], msg["old_password"], msg["new_password"]
            )
        except Busy:
            return NtStatus.STATUS_INSUFFICIENT_RESOURCES
        except SamError as exc:
            return exc.status
        subject = audit.Subject(client.token, client.pid, client.image)
        user = outcome.user
        if outcome.locked_now and user is not None:
            sid = self.sam.sid_of(user.rid)
            audit.account(self.log, 4740, subject, user.name, self.computer_name, sid)
        if outcome.status != NtStatus.STATUS_SUCCESS:
            return outcome.status
        assert user is not None
        # 4723 is a user changing its own password; Windows logs 4738 beside it.
        audit.account(
            self.log, 4738, subject, user.name, self.computer_name, self.sam.sid_of(user.rid)
        )
        return Reply(NtStatus.STATUS_SUCCESS, {"protocol_status": 0})


def unix_parent(pid: int) -> int | None:
    """The Unix parent of ``pid`` (field 4 of /proc/<pid>/stat), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _iso(seconds: float) -> str:
    if not seconds:
        return "Never"
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
