"""The object manager namespace (processes/kernel/ob.py)."""

from __future__ import annotations

import threading

import pytest

from nt.status import NtStatus
from processes.kernel.ob import (
    MAX_REPARSE,
    UNIX_PATH_MAX,
    EndpointPathTooLongError,
    ObError,
    ObjectManager,
    ipc_endpoint,
)


@pytest.fixture
def ob() -> ObjectManager:
    return ObjectManager("/run/ntm")


def status_of(call) -> NtStatus:
    with pytest.raises(ObError) as info:
        call()
    return info.value.status


def test_initial_namespace_has_the_obinitsystem_directories(ob):
    names = {entry.name for entry in ob.query_directory("\\")}
    assert {
        "ObjectTypes",
        "Device",
        "Driver",
        "KernelObjects",
        "GLOBAL??",
        "??",
        "BaseNamedObjects",
        "Sessions",
        "RPC Control",
    } <= names
    assert "Windows" not in names  # smss creates it from ObjectDirectories
    devices = {entry.name for entry in ob.query_directory(r"\Device")}
    assert {"Null", "NamedPipe", "MailSlot", "HarddiskVolume1"} <= devices
    assert ob.query_symbolic_link(r"\??") == r"\GLOBAL??"


def test_second_port_creator_gets_collision_and_first_keeps_the_name(ob):
    first = ob.create_port(r"\SmApiPort", owner_pid=10, max_message_length=304)
    assert status_of(lambda: ob.create_port(r"\SMAPIPORT", 11, 304)) == (
        NtStatus.STATUS_OBJECT_NAME_COLLISION
    )
    port = ob.lookup_port(r"\SmApiPort")
    assert port is first
    assert port.owner_pid == 10
    assert port.endpoint == first.endpoint


def test_port_collides_with_an_object_of_another_type(ob):
    ob.create_directory(r"\Windows", permanent=True)
    assert status_of(lambda: ob.create_port(r"\Windows", 5, 100)) == (
        NtStatus.STATUS_OBJECT_NAME_COLLISION
    )


def test_lookup_is_case_insensitive_and_preserves_case(ob):
    ob.create_directory(r"\Windows", permanent=True)
    ob.create_port(r"\Windows\ApiPort", 20, 4096)
    assert ob.lookup_port(r"\wINDOWS\aPIpORT").owner_pid == 20
    names = [entry.name for entry in ob.query_directory(r"\WINDOWS")]
    assert names == ["ApiPort"]


def test_open_if_returns_the_existing_directory(ob):
    first = ob.create_directory(r"\Windows", permanent=True)
    again = ob.create_directory(r"\windows", open_if=True)
    assert again is first
    assert status_of(lambda: ob.create_directory(r"\Windows")) == (
        NtStatus.STATUS_OBJECT_NAME_COLLISION
    )


def test_symbolic_links_are_followed_in_intermediate_components(ob):
    ob.create_directory(r"\Windows", permanent=True)
    ob.create_port(r"\Windows\ApiPort", 20, 4096)
    ob.create_symbolic_link(r"\GLOBAL??\Win", r"\Windows")
    assert ob.lookup_port(r"\??\Win\ApiPort").owner_pid == 20
    assert ob.lookup_port(r"\DosDevices\win\apiport").owner_pid == 20


def test_link_to_a_port_is_followed_but_query_reads_the_link_itself(ob):
    ob.create_port(r"\RPC Control\ntsvcs", 30, 1024)
    ob.create_symbolic_link(r"\GLOBAL??\scm", r"\RPC Control\ntsvcs")
    assert ob.lookup_port(r"\??\scm").owner_pid == 30
    assert ob.query_symbolic_link(r"\??\scm") == r"\RPC Control\ntsvcs"


def test_creation_through_a_link_lands_in_the_target_directory(ob):
    ob.create_symbolic_link(r"\??\NUL", r"\Device\Null")
    entries = {entry.name: entry for entry in ob.query_directory(r"\GLOBAL??")}
    assert entries["NUL"].target == r"\Device\Null"


def test_link_loop_stops_at_the_reparse_limit(ob):
    ob.create_symbolic_link(r"\A", r"\B")
    ob.create_symbolic_link(r"\B", r"\A")
    with pytest.raises(ObError) as info:
        ob.lookup(r"\A\x")
    assert info.value.status == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert "too many" in str(info.value)
    assert MAX_REPARSE == 30


def test_missing_names_report_name_or_path_not_found(ob):
    assert (
        status_of(lambda: ob.lookup_port(r"\NoSuchPort")) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    )
    assert (
        status_of(lambda: ob.lookup_port(r"\NoDir\Port")) == NtStatus.STATUS_OBJECT_PATH_NOT_FOUND
    )
    assert status_of(lambda: ob.create_port(r"\NoDir\Port", 1, 10)) == (
        NtStatus.STATUS_OBJECT_PATH_NOT_FOUND
    )


def test_lookup_port_of_a_directory_is_a_type_mismatch(ob):
    assert status_of(lambda: ob.lookup_port(r"\Device")) == NtStatus.STATUS_OBJECT_TYPE_MISMATCH


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("SmApiPort", NtStatus.STATUS_OBJECT_PATH_SYNTAX_BAD),
        ("", NtStatus.STATUS_OBJECT_PATH_SYNTAX_BAD),
        (r"\Windows\\ApiPort", NtStatus.STATUS_OBJECT_NAME_INVALID),
        ("\\Windows\\", NtStatus.STATUS_OBJECT_NAME_INVALID),
        ("\\Bad\x00Name", NtStatus.STATUS_OBJECT_NAME_INVALID),
        ("\\" + "x" * 256, NtStatus.STATUS_OBJECT_NAME_INVALID),
    ],
)
def test_invalid_names_are_refused(ob, path, status):
    assert status_of(lambda: ob.create_directory(path)) == status


def test_component_of_255_characters_is_accepted(ob):
    ob.create_directory("\\" + "x" * 255)
    assert ob.exists("\\" + "X" * 255)


def test_process_exit_removes_its_ports_and_temporary_objects_only(ob):
    ob.create_directory(r"\Windows", permanent=True, owner_pid=7)
    ob.create_port(r"\Windows\ApiPort", 7, 4096)
    ob.create_port(r"\Windows\SbApiPort", 7, 272)
    ob.create_event(r"\BaseNamedObjects\Temp", True, owner_pid=7)
    ob.create_event(r"\BaseNamedObjects\Kept", True, owner_pid=7, permanent=True)
    ob.create_port(r"\Other", 8, 100)
    removed = ob.on_process_exit(7)
    assert sorted(r.path for r in removed) == [
        r"\BaseNamedObjects\Temp",
        r"\Windows\ApiPort",
        r"\Windows\SbApiPort",
    ]
    assert all(r.endpoint.startswith("ipc://") for r in removed if r.type_name == "Port")
    assert ob.exists(r"\Windows")
    assert ob.exists(r"\BaseNamedObjects\Kept")
    assert ob.lookup_port(r"\Other").owner_pid == 8
    # The name is free again for a new server.
    ob.create_port(r"\Windows\ApiPort", 9, 4096)


def test_process_exit_removes_a_temporary_directory_with_its_contents(ob):
    ob.create_directory(r"\Sessions\5", owner_pid=3)
    ob.create_port(r"\Sessions\5\Port", 4, 100)
    removed = ob.on_process_exit(3)
    assert [r.path for r in removed] == [r"\Sessions\5", r"\Sessions\5\Port"]
    assert not ob.exists(r"\Sessions\5")


def test_make_temporary_removes_an_unowned_object_at_once(ob):
    ob.create_directory(r"\Windows", permanent=True)
    removed = ob.make_temporary(r"\Windows")
    assert [r.path for r in removed] == [r"\Windows"]
    assert not ob.exists(r"\Windows")


def test_make_temporary_on_an_owned_object_defers_to_its_owner_exit(ob):
    ob.create_directory(r"\Windows", permanent=True, owner_pid=12)
    assert ob.make_temporary(r"\Windows") == []
    assert ob.exists(r"\Windows")
    assert [r.path for r in ob.on_process_exit(12)] == [r"\Windows"]


def test_delete_of_a_link_removes_the_link_not_its_target(ob):
    ob.create_symbolic_link(r"\??\X", r"\Device\Null")
    ob.delete(r"\??\X")
    assert not ob.exists(r"\GLOBAL??\X")
    assert ob.exists(r"\Device\Null")
    assert status_of(lambda: ob.delete("\\")) == NtStatus.STATUS_ACCESS_DENIED


def test_resolve_follows_links_into_a_device(ob):
    assert ob.resolve(r"\??\C:\Windows\System32") == r"\Device\HarddiskVolume1\Windows\System32"
    assert ob.resolve(r"\SystemRoot") == r"\Device\HarddiskVolume1\Windows"
    assert ob.resolve(r"\??\GLOBALROOT\Device\Null") == r"\Device\Null"


def test_session_directory_has_base_named_objects_and_a_bnolinks_entry(ob):
    assert ob.create_session_directory(1) == r"\Sessions\1"
    assert ob.query_symbolic_link(r"\Sessions\BNOLINKS\1") == r"\Sessions\1\BaseNamedObjects"
    assert not ob.exists(r"\Sessions\BNOLINKS\0")
    ob.create_session_directory(0)
    assert ob.query_symbolic_link(r"\Sessions\BNOLINKS\0") == r"\BaseNamedObjects"


def test_manual_reset_event_releases_every_waiter_and_stays_signalled(ob):
    ob.create_event(r"\KernelObjects\Boot", manual_reset=True)
    assert ob.wait_event(r"\KernelObjects\Boot", "a", context="reply-a") is False
    assert ob.wait_event(r"\KernelObjects\Boot", "b", context="reply-b") is False
    released = ob.set_event(r"\KernelObjects\Boot")
    assert [w.context for w in released] == ["reply-a", "reply-b"]
    assert ob.wait_event(r"\KernelObjects\Boot", "c") is True
    assert ob.reset_event(r"\KernelObjects\Boot") is True
    assert ob.wait_event(r"\KernelObjects\Boot", "d") is False


def test_auto_reset_event_releases_one_waiter_per_set(ob):
    ob.create_event(r"\KernelObjects\Auto", manual_reset=False)
    for waiter in ("a", "b"):
        assert ob.wait_event(r"\KernelObjects\Auto", waiter) is False
    assert [w.waiter_id for w in ob.set_event(r"\KernelObjects\Auto")] == ["a"]
    assert [w.waiter_id for w in ob.set_event(r"\KernelObjects\Auto")] == ["b"]
    assert ob.set_event(r"\KernelObjects\Auto") == []
    # Signalled with nobody waiting: the next wait consumes it.
    assert ob.wait_event(r"\KernelObjects\Auto", "c") is True
    assert ob.wait_event(r"\KernelObjects\Auto", "d") is False


def test_pulse_releases_waiters_and_leaves_the_event_unsignalled(ob):
    ob.create_event(r"\E", manual_reset=True)
    ob.wait_event(r"\E", 1)
    assert [w.waiter_id for w in ob.pulse_event(r"\E")] == [1]
    assert ob.lookup_event(r"\E").signalled is False


def test_duplicate_waiter_id_is_refused_and_cancel_removes_a_waiter(ob):
    ob.create_event(r"\E", manual_reset=True)
    ob.wait_event(r"\E", 1)
    assert status_of(lambda: ob.wait_event(r"\E", 1)) == NtStatus.STATUS_INVALID_PARAMETER
    assert ob.cancel_wait(r"\E", 1).waiter_id == 1
    assert ob.set_event(r"\E") == []


def test_exit_drops_the_dead_process_waits_and_returns_waiters_of_removed_events(ob):
    ob.create_event(r"\Kept", manual_reset=True, permanent=True)
    ob.wait_event(r"\Kept", "dead", pid=50)
    ob.wait_event(r"\Kept", "alive", pid=51)
    ob.create_event(r"\Owned", manual_reset=True, owner_pid=50)
    ob.wait_event(r"\Owned", "other", pid=52)
    removed = ob.on_process_exit(50)
    assert [w.waiter_id for w in ob.set_event(r"\Kept")] == ["alive"]
    assert [(r.path, [w.waiter_id for w in r.waiters]) for r in removed] == [(r"\Owned", ["other"])]


def test_endpoints_are_short_unique_ipc_paths(ob):
    first = ob.allocate_endpoint()
    second = ob.allocate_endpoint()
    assert first == "ipc:///run/ntm/p/1"
    assert second == "ipc:///run/ntm/p/2"


def test_endpoint_over_the_unix_socket_limit_raises_a_clear_error():
    runtime = "/tmp/" + "r" * (UNIX_PATH_MAX - len("/tmp/") - len("/p/1") + 1)
    with pytest.raises(EndpointPathTooLongError, match="107"):
        ipc_endpoint(runtime, "1")
    exact = "/tmp/" + "r" * (UNIX_PATH_MAX - len("/tmp/") - len("/p/1"))
    assert len(ipc_endpoint(exact, "1")) == len("ipc://") + UNIX_PATH_MAX


def test_concurrent_creators_of_one_name_get_exactly_one_winner(ob):
    winners: list[int] = []
    barrier = threading.Barrier(8)

    def create(pid: int) -> None:
        barrier.wait()
        try:
            ob.create_port(r"\Race", pid, 100)
            winners.append(pid)
        except ObError as err:
            assert err.status == NtStatus.STATUS_OBJECT_NAME_COLLISION

    threads = [threading.Thread(target=create, args=(pid,)) for pid in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert ob.lookup_port(r"\Race").owner_pid == winners[0]


def test_window_stations_live_in_their_sessions_windows_directory_and_go_with_the_creator(ob):
    ob.create_directory(r"\Windows", permanent=True)
    ob.create_session_directory(1)
    ob.create_directory(r"\Sessions\1\Windows", owner_pid=40)
    s0 = ob.create_window_station(0, "WinSta0", owner_pid=20)
    s1 = ob.create_window_station(1, "WinSta0", owner_pid=41)
    assert (s0.path, s1.path) == (
        r"\Windows\WindowStations\WinSta0",
        r"\Sessions\1\Windows\WindowStations\WinSta0",
    )
    ob.create_desktop(1, "WinSta0", "Default")
    ob.create_desktop(1, "WinSta0", "Winlogon")
    assert s1.desktops == ["Default", "Winlogon"] and s0.desktops == []
    entries = ob.query_directory(r"\Sessions\1\Windows\WindowStations")
    assert [(e.name, e.type_name) for e in entries] == [("WinSta0", "WindowStation")]
    assert status_of(lambda: ob.create_window_station(1, "WinSta0", 41)) == (
        NtStatus.STATUS_OBJECT_NAME_COLLISION
    )
    assert status_of(lambda: ob.create_desktop(1, "WinSta0", "Default")) == (
        NtStatus.STATUS_OBJECT_NAME_COLLISION
    )
    assert status_of(lambda: ob.create_window_station(1, r"a\b", 41)) == (
        NtStatus.STATUS_OBJECT_NAME_INVALID
    )
    assert status_of(lambda: ob.create_desktop(2, "WinSta0", "Default")) == (
        NtStatus.STATUS_OBJECT_PATH_NOT_FOUND
    )
    ob.on_process_exit(41)  # winlogon of session 1 ends: its window station goes
    assert not ob.exists(r"\Sessions\1\Windows\WindowStations")
    assert ob.exists(r"\Windows\WindowStations\WinSta0")
