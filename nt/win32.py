"""Win32 error codes (winerror.h) with their names and their FormatMessage texts.

One table for every component: the SCM answers with these, ``sc`` prints
``[SC] <Routine> FAILED <code>:\\n\\n<text>``, events quote the text (7000, 7023 ...).
Texts are the English system messages exactly as ``net helpmsg`` prints them.
"""

from __future__ import annotations


class Win32Error:
    """The codes as plain ints (they travel in message bodies, whose schemas want exact
    ints; an IntEnum member is not one)."""

    ERROR_SUCCESS = 0
    ERROR_INVALID_FUNCTION = 1
    ERROR_FILE_NOT_FOUND = 2
    ERROR_PATH_NOT_FOUND = 3
    ERROR_ACCESS_DENIED = 5
    ERROR_INVALID_HANDLE = 6
    ERROR_NOT_ENOUGH_MEMORY = 8
    ERROR_INVALID_DATA = 13
    ERROR_GEN_FAILURE = 31
    ERROR_NOT_SUPPORTED = 50
    ERROR_INVALID_PARAMETER = 87
    ERROR_CALL_NOT_IMPLEMENTED = 120
    ERROR_INSUFFICIENT_BUFFER = 122
    ERROR_INVALID_NAME = 123
    ERROR_INVALID_LEVEL = 124
    ERROR_BAD_EXE_FORMAT = 193
    ERROR_MORE_DATA = 234
    ERROR_NO_MORE_ITEMS = 259
    ERROR_BADDB = 1009
    ERROR_REGISTRY_CORRUPT = 1015
    ERROR_REGISTRY_IO_FAILED = 1016
    ERROR_NOT_REGISTRY_FILE = 1017
    ERROR_DEPENDENT_SERVICES_RUNNING = 1051
    ERROR_INVALID_SERVICE_CONTROL = 1052
    ERROR_SERVICE_REQUEST_TIMEOUT = 1053
    ERROR_SERVICE_NO_THREAD = 1054
    ERROR_SERVICE_DATABASE_LOCKED = 1055
    ERROR_SERVICE_ALREADY_RUNNING = 1056
    ERROR_INVALID_SERVICE_ACCOUNT = 1057
    ERROR_SERVICE_DISABLED = 1058
    ERROR_CIRCULAR_DEPENDENCY = 1059
    ERROR_SERVICE_DOES_NOT_EXIST = 1060
    ERROR_SERVICE_CANNOT_ACCEPT_CTRL = 1061
    ERROR_SERVICE_NOT_ACTIVE = 1062
    ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063
    ERROR_EXCEPTION_IN_SERVICE = 1064
    ERROR_DATABASE_DOES_NOT_EXIST = 1065
    ERROR_SERVICE_SPECIFIC_ERROR = 1066
    ERROR_PROCESS_ABORTED = 1067
    ERROR_SERVICE_DEPENDENCY_FAIL = 1068
    ERROR_SERVICE_LOGON_FAILED = 1069
    ERROR_SERVICE_START_HANG = 1070
    ERROR_INVALID_SERVICE_LOCK = 1071
    ERROR_SERVICE_MARKED_FOR_DELETE = 1072
    ERROR_SERVICE_EXISTS = 1073
    ERROR_ALREADY_RUNNING_LKG = 1074
    ERROR_SERVICE_DEPENDENCY_DELETED = 1075
    ERROR_BOOT_ALREADY_ACCEPTED = 1076
    ERROR_SERVICE_NEVER_STARTED = 1077
    ERROR_DUPLICATE_SERVICE_NAME = 1078
    ERROR_DIFFERENT_SERVICE_ACCOUNT = 1079
    ERROR_SERVICE_NOT_IN_EXE = 1083
    ERROR_NOT_SAFEBOOT_SERVICE = 1084
    ERROR_SHUTDOWN_IN_PROGRESS = 1115
    ERROR_NO_SHUTDOWN_IN_PROGRESS = 1116
    ERROR_NOT_ENOUGH_SERVER_MEMORY = 1130
    ERROR_SERVICE_NOT_FOUND = 1243
    ERROR_NO_SUCH_LOGON_SESSION = 1312
    ERROR_PRIVILEGE_NOT_HELD = 1314
    ERROR_INVALID_ACL = 1336
    ERROR_INVALID_SECURITY_DESCR = 1338
    ERROR_LOGON_TYPE_NOT_GRANTED = 1385
    ERROR_LOGON_FAILURE = 1326
    ERROR_INVALID_PRINTER_NAME = 1801
    ERROR_INVALID_DATATYPE = 1804
    ERROR_TIMEOUT = 1460
    ERROR_CTX_WINSTATION_NOT_FOUND = 7022
    ERROR_SPL_NO_STARTDOC = 3003


NAMES: dict[int, str] = {v: k for k, v in vars(Win32Error).items() if k.startswith("ERROR_")}

MESSAGES: dict[int, str] = {
    0: "The operation completed successfully.",
    1: "Incorrect function.",
    2: "The system cannot find the file specified.",
    3: "The system cannot find the path specified.",
    5: "Access is denied.",
    6: "The handle is invalid.",
    8: "Not enough memory resources are available to process this command.",
    13: "The data is invalid.",
    31: "A device attached to the system is not functioning.",
    50: "The request is not supported.",
    87: "The parameter is incorrect.",
    120: "This function is not supported on this system.",
    122: "The data area passed to a system call is too small.",
    123: "The filename, directory name, or volume label syntax is incorrect.",
    124: "The system call level is not correct.",
    193: "%1 is not a valid Win32 application.",
    234: "More data is available.",
    259: "No more data is available.",
    1009: "The configuration registry database is corrupt.",
    1015: (
        "The registry is corrupted. The structure of one of the files containing registry data "
        "is corrupted, or the system's memory image of the file is corrupted, or the file could "
        "not be recovered because the alternate copy or log was absent or corrupted."
    ),
    1016: (
        "An I/O operation initiated by the registry failed unrecoverably. The registry could "
        "not read in, or write out, or flush, one of the files that contain the system's image "
        "of the registry."
    ),
    1017: (
        "The system has attempted to load or restore a file into the registry, but the "
        "specified file is not in a registry file format."
    ),
    1051: "A stop control has been sent to a service that other running services are dependent on.",
    1052: "The requested control is not valid for this service.",
    1053: "The service did not respond to the start or control request in a timely fashion.",
    1054: "A thread could not be created for the service.",
    1055: "The service database is locked.",
    1056: "An instance of the service is already running.",
    1057: (
        "The account name is invalid or does not exist, or the password is invalid for the "
        "account name specified."
    ),
    1058: (
        "The service cannot be started, either because it is disabled or because it has no "
        "enabled devices associated with it."
    ),
    1059: "Circular service dependency was specified.",
    1060: "The specified service does not exist as an installed service.",
    1061: "The service cannot accept control messages at this time.",
    1062: "The service has not been started.",
    1063: "The service process could not connect to the service controller.",
    1064: "An exception occurred in the service when handling the control request.",
    1065: "The database specified does not exist.",
    1066: "The service has returned a service-specific error code.",
    1067: "The process terminated unexpectedly.",
    1068: "The dependency service or group failed to start.",
    1069: "The service did not start due to a logon failure.",
    1070: "After starting, the service hung in a start-pending state.",
    1071: "The specified service database lock is invalid.",
    1072: "The specified service has been marked for deletion.",
    1073: "The specified service already exists.",
    1074: "The system is currently running with the last-known-good configuration.",
    1075: "The dependency service does not exist or has been marked for deletion.",
    1076: "The current boot has already been accepted for use as the last-known-good control set.",
    1077: "No attempts to start the service have been made since the last boot.",
    1078: "The name is already in use as either a service name or a service display name.",
    1079: (
        "The account specified for this service is different from the account specified for "
        "other services running in the same process."
    ),
    1083: (
        "The executable program that this service is configured to run in does not implement "
        "the service."
    ),
    1084: "This service cannot be started in Safe Mode",
    1115: "A system shutdown is in progress.",
    1314: "A required privilege is not held by the client.",
    1336: "The access control list (ACL) structure is invalid.",
    1338: "The security descriptor structure is invalid.",
    1385: "Logon failure: the user has not been granted the requested logon type at this computer.",
    1116: "Unable to abort the system shutdown because no shutdown was in progress.",
    1130: "Not enough server memory resources are available to process this command.",
    1243: "The specified service does not exist.",
    1312: "A specified logon session does not exist. It may already have been terminated.",
    1326: "The user name or password is incorrect.",
    1801: "The printer name is invalid.",
    1804: "The specified datatype is invalid.",
    1460: "This operation returned because the timeout period expired.",
    7022: "The specified session cannot be found.",
    3003: "A StartDocPrinter call was not issued.",
}


def error_name(code: int) -> str:
    """``1060`` → ``ERROR_SERVICE_DOES_NOT_EXIST``; unknown codes as ``ERROR_<n>``."""
    return NAMES.get(code, f"ERROR_{code}")


def error_message(code: int) -> str:
    """The FormatMessage text; an unknown code gets the text Windows prints for one."""
    text = MESSAGES.get(code)
    if text is None:
        return f"The system cannot find message text for message number 0x{code:x} in the message file for Application."
    return text
