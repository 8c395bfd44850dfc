"""nt/security.py: SeAccessCheck over a token and SDDL, as every server will use them."""

from __future__ import annotations

import pytest

from nt import security as sec
from processes.lsass.session import build_token

# winsvc.h's service rights and mapping; Windows 10's default service descriptor.
SERVICE_QUERY_STATUS, SERVICE_START, SERVICE_STOP = 0x4, 0x10, 0x20
SERVICE_MAPPING = sec.GenericMapping(read=0x2008D, write=0x20002, execute=0x20170, all=0xF01FF)
DEFAULT_SERVICE_SDDL = (
    "O:SYG:SYD:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)"
    "(A;;CCLCSWLOCRRC;;;IU)(A;;CCLCSWLOCRRC;;;SU)"
)


def token(admin: bool, logon_type: int = sec.Interactive) -> dict:
    aliases = [sec.BUILTIN_USERS] + ([sec.BUILTIN_ADMINISTRATORS] if admin else [])
    return build_token(
        account="NTMODEL\\x",
        user_sid="S-1-5-21-1-2-3-1001",
        rid=1001,
        aliases=aliases,
        logon_type=logon_type,
        logon_id=0x1234,
        auth_package="NTLM",
    )


def test_sddl_round_trip_and_aliases() -> None:
    sd = sec.parse_sddl(DEFAULT_SERVICE_SDDL)
    assert sd.owner == sec.LOCAL_SYSTEM and len(sd.dacl) == 4
    assert sd.dacl[1].sid == sec.BUILTIN_ADMINISTRATORS
    assert sec.parse_sddl(sec.format_sddl(sd)) == sd
    assert sec.parse_sddl("O:BAD:NO_ACCESS_CONTROL").dacl is None
    with pytest.raises(sec.SddlError):
        sec.parse_sddl("D:(X;;GA;;;SY)")


def test_a_user_may_query_a_service_but_not_stop_it() -> None:
    sd = sec.parse_sddl(DEFAULT_SERVICE_SDDL)
    user = token(admin=False)
    assert sec.access_check(sd, user, SERVICE_QUERY_STATUS, SERVICE_MAPPING)[1] == 0
    granted, status = sec.access_check(sd, user, SERVICE_STOP, SERVICE_MAPPING)
    assert (granted, status) == (0, sec.STATUS_ACCESS_DENIED)


def test_uac_filtered_admin_is_denied_and_the_elevated_one_allowed() -> None:
    sd = sec.parse_sddl(DEFAULT_SERVICE_SDDL)
    filtered = token(admin=True, logon_type=sec.Interactive)  # Limited: BA deny-only
    full = token(admin=True, logon_type=sec.Batch)
    assert sec.access_check(sd, filtered, SERVICE_STOP, SERVICE_MAPPING)[1] != 0
    assert sec.access_check(sd, full, SERVICE_STOP | SERVICE_START, SERVICE_MAPPING)[1] == 0


def test_deny_aces_win_in_order_and_deny_only_groups_match_deny_aces() -> None:
    sd = sec.parse_sddl("O:SYD:(D;;WP;;;BA)(A;;GA;;;BU)")
    filtered = token(admin=True)
    assert sec.access_check(sd, filtered, SERVICE_STOP, SERVICE_MAPPING)[1] != 0
    assert sec.access_check(sd, filtered, SERVICE_START, SERVICE_MAPPING)[1] == 0
    later_deny = sec.parse_sddl("O:SYD:(A;;GA;;;BU)(D;;WP;;;BU)")
    assert sec.access_check(later_deny, token(False), SERVICE_STOP, SERVICE_MAPPING)[1] == 0


def test_generic_rights_maximum_allowed_owner_and_privileges() -> None:
    sd = sec.parse_sddl("O:S-1-5-21-1-2-3-1001D:(A;;GR;;;BU)")
    user = token(admin=False)
    granted, status = sec.access_check(sd, user, sec.MAXIMUM_ALLOWED, SERVICE_MAPPING)
    assert status == 0 and granted & SERVICE_QUERY_STATUS and not granted & SERVICE_STOP
    assert granted & sec.WRITE_DAC  # the owner's implicit right
    assert sec.access_check(sd, user, sec.GENERIC_WRITE, SERVICE_MAPPING)[1] != 0
    assert sec.access_check(sd, user, sec.ACCESS_SYSTEM_SECURITY, SERVICE_MAPPING)[1] == (
        sec.STATUS_PRIVILEGE_NOT_HELD
    )
    empty = sec.SecurityDescriptor(owner=sec.LOCAL_SYSTEM, dacl=())
    assert sec.access_check(empty, user, sec.GENERIC_READ, SERVICE_MAPPING)[1] != 0
    null = sec.SecurityDescriptor(owner=sec.LOCAL_SYSTEM, dacl=None)
    assert sec.access_check(null, user, sec.GENERIC_ALL, SERVICE_MAPPING)[1] == 0
