"""sc.exe layouts, character for character (ntctl/sc.py)."""

from __future__ import annotations

from ntctl import sc

RUNNING = {
    "service_type": 0x30,
    "current_state": 4,
    "controls_accepted": 0x5,
    "win32_exit_code": 0,
    "service_specific_exit_code": 0,
    "check_point": 0,
    "wait_hint": 0,
    "process_id": 1440,
    "service_flags": 0,
}
STOPPED = {
    **RUNNING,
    "service_type": 0x10,
    "current_state": 1,
    "controls_accepted": 0,
    "win32_exit_code": 1077,
}


def test_query_running():
    assert sc.query("EventLog", RUNNING) == (
        "\n"
        "SERVICE_NAME: EventLog\n"
        "        TYPE               : 30  WIN32  \n"
        "        STATE              : 4  RUNNING \n"
        "                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\n"
        "        WIN32_EXIT_CODE    : 0  (0x0)\n"
        "        SERVICE_EXIT_CODE  : 0  (0x0)\n"
        "        CHECKPOINT         : 0x0\n"
        "        WAIT_HINT          : 0x0\n"
    )


def test_query_stopped_has_no_controls_line_and_queryex_adds_pid_flags():
    text = sc.query("Spooler", {**STOPPED, "wait_hint": 2000}, ex=True)
    assert text.splitlines()[2:] == [
        "        TYPE               : 10  WIN32_OWN_PROCESS  ",
        "        STATE              : 1  STOPPED ",
        "        WIN32_EXIT_CODE    : 1077  (0x435)",
        "        SERVICE_EXIT_CODE  : 0  (0x0)",
        "        CHECKPOINT         : 0x0",
        "        WAIT_HINT          : 0x7d0",
        "        PID                : 1440",
        "        FLAGS              : ",
    ]


def test_start_pending_not_stoppable():
    line = sc.query("X", {**RUNNING, "current_state": 2, "controls_accepted": 0}).splitlines()[4]
    assert line == "                                (NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)"


def test_qc():
    config = {
        "service_type": 0x110,
        "start_type": 2,
        "error_control": 1,
        "binary_path_name": r"C:\Windows\System32\spoolsv.exe",
        "load_order_group": "SpoolerGroup",
        "tag_id": 0,
        "dependencies": ["RPCSS", "http"],
        "service_start_name": "LocalSystem",
        "display_name": "Print Spooler",
    }
    assert sc.qc("Spooler", config, delayed=True) == (
        "[SC] QueryServiceConfig SUCCESS\n"
        "\n"
        "SERVICE_NAME: Spooler\n"
        "        TYPE               : 110  WIN32_OWN_PROCESS (interactive) \n"
        "        START_TYPE         : 2   AUTO_START  (DELAYED)\n"
        "        ERROR_CONTROL      : 1   NORMAL\n"
        "        BINARY_PATH_NAME   : C:\\Windows\\System32\\spoolsv.exe\n"
        "        LOAD_ORDER_GROUP   : SpoolerGroup\n"
        "        TAG                : 0\n"
        "        DISPLAY_NAME       : Print Spooler\n"
        "        DEPENDENCIES       : RPCSS\n"
        "                           : http\n"
        "        SERVICE_START_NAME : LocalSystem\n"
    )


def test_qfailure():
    failure = {
        "reset_period": 86400,
        "reboot_msg": None,
        "command": None,
        "actions": [
            {"type": 1, "delay": 60000},
            {"type": 1, "delay": 60000},
            {"type": 0, "delay": 0},
        ],
    }
    assert sc.qfailure("Spooler", failure) == (
        "[SC] QueryServiceConfig2 SUCCESS\n"
        "\n"
        "SERVICE_NAME: Spooler\n"
        "        RESET_PERIOD (in seconds)    : 86400\n"
        "        REBOOT_MESSAGE               : \n"
        "        COMMAND_LINE                 : \n"
        "        FAILURE_ACTIONS              : RESTART -- Delay = 60000 milliseconds.\n"
        "                                       RESTART -- Delay = 60000 milliseconds.\n"
        "                                       NONE -- Delay = 0 milliseconds.\n"
    )


def test_qdescription_and_failed():
    assert sc.qdescription("W32Time", "Maintains date and time synchronization.") == (
        "[SC] QueryServiceConfig2 SUCCESS\n\nSERVICE_NAME: W32Time\n"
        "DESCRIPTION:  Maintains date and time synchronization.\n"
    )
    assert sc.failed("OpenService", 1060) == (
        "[SC] OpenService FAILED 1060:\n\nThe specified service does not exist as an installed service.\n\n"
    )
    assert sc.success("DeleteService") == "[SC] DeleteService SUCCESS\n"


def test_enumdepend():
    entries = [{"service_name": "Netlogon", "display_name": "Netlogon", "status": STOPPED}]
    assert sc.enumdepend(entries) == (
        "Enum: entriesRead = 1\n"
        "\n"
        "SERVICE_NAME: Netlogon\n"
        "DISPLAY_NAME: Netlogon\n"
        "        TYPE               : 10  WIN32_OWN_PROCESS  \n"
        "        STATE              : 1  STOPPED \n"
        "        WIN32_EXIT_CODE    : 1077  (0x435)\n"
        "        SERVICE_EXIT_CODE  : 0  (0x0)\n"
        "        CHECKPOINT         : 0x0\n"
        "        WAIT_HINT          : 0x0\n"
    )


def test_order_explains_every_position():
    class Reason:
        def __init__(self, text: str) -> None:
            self.text = text

    text = sc.order(
        ["EventLog", "RpcSs"],
        {"EventLog": Reason('group "Event Log"'), "RpcSs": "ungrouped"},
        {"Loop": 1059},
    )
    assert text.splitlines() == [
        "AUTO-START ORDER (2 services)",
        "",
        '   1  EventLog  group "Event Log"',
        "   2  RpcSs     ungrouped",
        "   -  Loop      not started: 1059 Circular service dependency was specified.",
    ]
