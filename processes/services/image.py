"""Service images: the processes services run in (ScmCreateOrReferenceServiceImage,
ScmStartUserModeService; nt-spec §4.9).

An image is keyed by its ImagePath (every share-process service with the same path runs
in one svchost), except when Windows 10 splits svchost: with more memory than
``SvcHostSplitThresholdInKB`` each svchost service gets its own process unless it sets
``SvcHostSplitDisable`` (its status then reports type 0x30, as ``sc query`` shows on
Windows 10). The security process (``...\\system32\\lsass.exe``) is ServiceCurrent 0 and
is never created: the SCM sets SECURITY_SERVICES_STARTED and lsass's dispatcher connects.
"""

from __future__ import annotations

import ntpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ports.svcctl import SERVICE_WIN32_OWN_PROCESS, SERVICE_WIN32_SHARE_PROCESS

if TYPE_CHECKING:
    from processes.services.database import ServiceRecord
    from processes.services.scm import ControlChannel, Timer

SECURITY_SERVICES_STARTED = "SECURITY_SERVICES_STARTED"
SECURITY_PROCESS = "lsass.exe"
SVCHOST = "svchost.exe"
ERROR_DIFFERENT_SERVICE_ACCOUNT = 1079


@dataclass(frozen=True)
class ControlPacket:
    """SCM_CONTROL_PACKET (services.h)."""

    sequence: int
    control: int
    service_name: str
    status_handle: int = 0
    arguments: tuple[str, ...] = ()

    def body(self) -> dict[str, object]:
        return {
            "sequence": self.sequence,
            "control": self.control,
            "service_name": self.service_name,
            "status_handle": self.status_handle,
            "arguments": list(self.arguments),
        }


ReplyFn = Callable[[int], None]


@dataclass
class PendingControl:
    packet: ControlPacket
    on_reply: ReplyFn
    timer: Timer | None = None


@dataclass
class ServiceImage:
    """SERVICE_IMAGE: one process, its control connection and the services in it."""

    key: str
    image_path: str
    account: str
    service_current: int
    pid: int = 0
    channel: ControlChannel | None = None
    services: set[str] = field(default_factory=set)  # lower-case names started in it
    queued: list[PendingControl] = field(default_factory=list)  # before it connects
    pending: dict[int, PendingControl] = field(default_factory=dict)  # sent, unanswered
    connect_timer: Timer | None = None
    reap_timer: Timer | None = None  # after the last STOP: the process must exit by then
    standin: bool = False
    security_process: bool = False
    exited: bool = False

    @property
    def connected(self) -> bool:
        return self.channel is not None


def image_file(image_path: str) -> str:
    """``%SystemRoot%\\System32\\svchost.exe -k netsvcs -p`` → ``svchost.exe``."""
    path = image_path.strip()
    if path.startswith('"'):
        path = path[1:].split('"', 1)[0]
    else:
        path = path.split(" -", 1)[0].split(" /", 1)[0]
    return ntpath.basename(path).lower()


def is_security_process(image_path: str) -> bool:
    return image_file(image_path) == SECURITY_PROCESS


def image_key(service: ServiceRecord, *, split: bool) -> str:
    """Which image a service runs in: its own, or the one shared by its ImagePath."""
    path = " ".join(service.image_path.lower().split())
    shared = bool(service.service_type & SERVICE_WIN32_SHARE_PROCESS)
    if not shared or (
        split and image_file(service.image_path) == SVCHOST and not service.svchost_split_disable
    ):
        return f"{path}|{service.name.lower()}"
    return path


def should_split(memory_kb: int, threshold_kb: int) -> bool:
    """Windows 10 1703+: split svchost when installed memory exceeds the threshold."""
    return memory_kb > threshold_kb


def status_type(service: ServiceRecord, key: str) -> int:
    """A split share-process service reports own|share (0x30)."""
    if service.service_type & SERVICE_WIN32_SHARE_PROCESS and key.endswith(
        "|" + service.name.lower()
    ):
        return service.service_type | SERVICE_WIN32_OWN_PROCESS
    return service.service_type


def check_account(image: ServiceImage, service: ServiceRecord) -> int:
    """ScmGetServiceImageByImagePath: one process, one account."""
    if image.account.lower() != service.object_name.lower():
        return ERROR_DIFFERENT_SERVICE_ACCOUNT
    return 0
