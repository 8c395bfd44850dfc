"""MSV1_0, the local authentication package: checks a password against SAM, applies the
lockout policy, and says why a logon failed (msv1_0.c ``LsaApLogonUserEx2``, with the
storage and lockout rules of reliability-security §4.2-4.4).

- Input caps before any hashing: a user name of 1-256 characters, a password of valid
  UTF-8 with no NUL, at most 256 characters and 1 KiB; anything else is
  STATUS_LOGON_FAILURE with SubStatus STATUS_INVALID_PARAMETER.
- An unknown user still costs one verify (against a dummy hash made with the same
  parameters), so its timing matches a wrong password; both are STATUS_LOGON_FAILURE to
  the caller and differ only in the SubStatus lsass audits.
- A locked account is refused before any hashing, even with the right password.
- At most ``max_verifies`` argon2id computations run at once; a caller that cannot get a
  slot before ``deadline`` seconds is answered STATUS_INSUFFICIENT_RESOURCES, so a logon
  flood costs bounded memory (``max_verifies`` × the hash's memory).
- Disabled, expired and must-change accounts are reported after the password check, as
  Windows does (which tells the caller the account exists: documented there too).

Passwords arrive as ``bytes`` and are never logged; Python cannot wipe an immutable
``bytes``, so they live until the request's message is collected (a documented limit).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import argon2

from nt.status import NtStatus
from processes.lsass.sam import ACB_AUTOLOCK, ACB_PW_EXPIRED, Sam, SamError, User

MAX_NAME_CHARS = 256
MAX_PASSWORD_CHARS = 256
MAX_PASSWORD_BYTES = 1024
# Windows Hello PIN complexity: 4 to 127 characters (the defaults: digits only).
MIN_PIN_CHARS = 4
MAX_PIN_CHARS = 127

# OWASP's minimum for argon2id (reliability-security §4.2): m = 19 MiB, t = 2, p = 1.
OWASP_TIME_COST = 2
OWASP_MEMORY_COST = 19456
OWASP_PARALLELISM = 1


@dataclass(frozen=True)
class HashParameters:
    time_cost: int = OWASP_TIME_COST
    memory_cost: int = OWASP_MEMORY_COST
    parallelism: int = OWASP_PARALLELISM

    def hasher(self) -> argon2.PasswordHasher:
        return argon2.PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            type=argon2.Type.ID,
        )


@dataclass
class Outcome:
    """What the caller sees (``status``) and what the Security log records."""

    status: int
    sub_status: int = 0
    user: User | None = None
    locked_now: bool = False  # this failure locked the account (event 4740)
    rehashed: bool = False


class Busy(Exception):
    """No verify slot before the deadline."""


def password_ok(password: bytes) -> bool:
    """The caps of reliability-security §4.2 (L7), checked before any hashing."""
    if len(password) > MAX_PASSWORD_BYTES or b"\x00" in password:
        return False
    try:
        return len(password.decode("utf-8")) <= MAX_PASSWORD_CHARS
    except UnicodeDecodeError:
        return False


class Msv1_0:
    def __init__(
        self,
        sam: Sam,
        params: HashParameters | None = None,
        max_verifies: int = 2,
        deadline: float = 5.0,
    ) -> None:
        self.sam = sam
        self.params = params or HashParameters()
        self.hasher = self.params.hasher()
        self.deadline = deadline
        self._slots = threading.BoundedSemaphore(max_verifies)
        self.max_verifies = max_verifies
        self.verifies = 0  # argon2 computations done (tests: a locked account costs none)
        # The dummy hash an unknown user is checked against: same parameters, same cost.
        # Made off the start-up path (lsass is ready sooner); the first unknown user waits.
        self._dummy = ""
        self._dummy_ready = threading.Event()
        threading.Thread(target=self._make_dummy, name="msv-dummy", daemon=True).start()

    def _make_dummy(self) -> None:
        self._dummy = self.hasher.hash(b"\x01dummy-password-never-matches")
        self._dummy_ready.set()

    def dummy(self) -> str:
        self._dummy_ready.wait()
        return self._dummy

    # -- hashing, bounded ---------------------------------------------------------------
    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.deadline):
            raise Busy
        try:
            yield
        finally:
            self._slots.release()

    def hash_password(self, password: bytes) -> str:
        with self._slot():
            self.verifies += 1
            return self.hasher.hash(password)

    def _verify(self, phc: str, password: bytes) -> bool:
        with self._slot():
            self.verifies += 1
            try:
                return self.hasher.verify(phc, password)
            except argon2.exceptions.VerificationError:
                return False
            except argon2.exceptions.InvalidHashError:
                return False

    # -- LsaApLogonUser -----------------------------------------------------------------
    def logon(self, name: str, password: bytes, pin: bool = False) -> Outcome:
        """Raises ``Busy`` when no verify slot came free in time. ``pin``: the secret is
        the account's PIN (the PIN credential provider), checked like a password (the
        same lockout counter) against the PIN hash."""
        if not 0 < len(name) <= MAX_NAME_CHARS or not password_ok(password):
            return Outcome(NtStatus.STATUS_LOGON_FAILURE, NtStatus.STATUS_INVALID_PARAMETER)
        sam = self.sam
        user = sam.lookup(name)
        if user is None:
            self._verify(self.dummy(), password)
            return Outcome(NtStatus.STATUS_LOGON_FAILURE, NtStatus.STATUS_NO_SUCH_USER)
        if self._check_lock(user):
            return Outcome(NtStatus.STATUS_ACCOUNT_LOCKED_OUT, 0, user)
        phc = user.pin_hash if pin else user.password_hash
        if pin and not phc:  # no PIN set: nothing can match (a dummy verify keeps the time)
            self._verify(self.dummy(), password)
            return self._failure(user)
        if phc:
            good = self._verify(phc, password)
        else:  # ACB_PWNOTREQ and no password set: only the empty password matches
            self._verify(self.dummy(), password)
            good = password == b""
        if not good:
            return self._failure(user)
        rehashed = False if pin else self._maybe_rehash(user, phc, password)
        if not user.enabled:
            return Outcome(NtStatus.STATUS_ACCOUNT_DISABLED, NtStatus.STATUS_ACCOUNT_DISABLED, user)
        now = sam.clock()
        if user.account_expires and now >= user.account_expires:
            return Outcome(NtStatus.STATUS_ACCOUNT_EXPIRED, NtStatus.STATUS_ACCOUNT_EXPIRED, user)
        if user.acb & ACB_PW_EXPIRED:
            status = NtStatus.STATUS_PASSWORD_MUST_CHANGE
            return Outcome(status, status, user)
        self._success(user, now)
        return Outcome(NtStatus.STATUS_SUCCESS, 0, user, rehashed=rehashed)

    def _check_lock(self, user: User) -> bool:
        """Locked → True, no hash. A lockout whose duration has run out is cleared here
        (Windows clears it at the next attempt)."""
        with self.sam.lock:
            now = self.sam.clock()
            if self.sam.is_locked(user, now):
                return True
            if user.auto_locked:
                user.acb &= ~ACB_AUTOLOCK
                user.bad_password_count = 0
                self.sam.save_f(user)
            return False

    def _failure(self, user: User) -> Outcome:
        sam, policy = self.sam, self.sam.policy
        with sam.lock:
            now = sam.clock()
            if user.last_bad_password and now - user.last_bad_password >= policy.window * 60:
                user.bad_password_count = 0  # the observation window has passed
            user.bad_password_count += 1
            user.last_bad_password = now
            exempt = user.rid == 500 and not policy.allow_admin_lockout
            locked_now = (
                policy.threshold > 0
                and user.bad_password_count >= policy.threshold
                and not exempt
                and not user.auto_locked
            )
            if locked_now:
                user.acb |= ACB_AUTOLOCK  # LockoutTime = this failure's time
            sam.save_f(user)
        return Outcome(
            NtStatus.STATUS_LOGON_FAILURE, NtStatus.STATUS_WRONG_PASSWORD, user, locked_now
        )

    def _success(self, user: User, now: float) -> None:
        with self.sam.lock:
            user.bad_password_count = 0
            user.last_logon = now
            user.logon_count += 1
            self.sam.save_f(user)

    def _maybe_rehash(self, user: User, phc: str, password: bytes) -> bool:
        """Parameters raised since this hash was made: store a new one (L12)."""
        if not phc or not self.hasher.check_needs_rehash(phc):
            return False
        with self.sam.lock:
            self.sam.save_hash(user, self.hasher.hash(password))
        return True

    # -- passwords ------------------------------------------------------------------------
    def check_new_password(self, password: bytes) -> None:
        if not password_ok(password):
            raise SamError(NtStatus.STATUS_PASSWORD_RESTRICTION)

    def check_new_pin(self, pin: bytes) -> None:
        """Windows Hello's PIN rules: 4-127 characters, digits only by default."""
        text = pin.decode("utf-8", "replace")
        if not MIN_PIN_CHARS <= len(text) <= MAX_PIN_CHARS or not text.isdigit():
            raise SamError(NtStatus.STATUS_PASSWORD_RESTRICTION)

    def change_password(self, name: str, old: bytes, new: bytes) -> Outcome:
        """MsV1_0ChangePassword: the old password must verify (it counts as a logon
        attempt for the lockout), then the new hash replaces it in one write."""
        outcome = self.logon(name, old)
        acceptable = (
            NtStatus.STATUS_SUCCESS,
            NtStatus.STATUS_PASSWORD_MUST_CHANGE,
            NtStatus.STATUS_PASSWORD_EXPIRED,
        )
        if outcome.status not in acceptable:
            if outcome.status == NtStatus.STATUS_LOGON_FAILURE:
                outcome.status = NtStatus.STATUS_WRONG_PASSWORD
            return outcome
        self.check_new_password(new)
        assert outcome.user is not None
        self.sam.set_password_hash(outcome.user, self.hash_password(new))
        return Outcome(NtStatus.STATUS_SUCCESS, 0, outcome.user)
