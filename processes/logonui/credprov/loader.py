r"""Loading the credential providers (LogonUI's CProviderManager): each CLSID under
``Credential Providers``, its module from the key's ``PythonModule`` value (the model's
InprocServer32), imported with importlib from this package only."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

PROVIDERS_KEY = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Authentication\Credential Providers"
)
PACKAGE = "processes.logonui.credprov"
MODULE_NAME = re.compile(r"^clsid_[0-9a-f_]{36}$")


@dataclass(frozen=True)
class Provider:
    clsid: str
    name: str
    get_serialization: Callable[[str, bytes], dict]


class Registry(Protocol):  # what the loader needs (nt.syscalls.SystemServices)
    def enum_keys(self, path: str) -> list[str]: ...

    def query_value(self, path: str, name: str) -> tuple[int, Any]: ...


def load_providers(reg: Registry, log: Any) -> dict[str, Provider]:
    """CLSID (folded) → provider. A key whose module is missing or wrong is logged and
    skipped, as LogonUI skips a provider whose DLL fails to load."""
    found: dict[str, Provider] = {}
    try:
        clsids = reg.enum_keys(PROVIDERS_KEY)
    except Exception as exc:
        log.warning("logonui.no_providers", status=getattr(exc, "status", 0))
        return found
    for clsid in clsids:
        key = f"{PROVIDERS_KEY}\\{clsid}"
        try:
            module_name = str(reg.query_value(key, "PythonModule")[1])
        except Exception:
            log.warning("logonui.provider_skipped", clsid=clsid, reason="no PythonModule")
            continue
        if not MODULE_NAME.match(module_name):
            log.warning("logonui.provider_skipped", clsid=clsid, reason="bad module name")
            continue
        try:
            module = importlib.import_module(f"{PACKAGE}.{module_name}")
        except ImportError:
            log.warning("logonui.provider_skipped", clsid=clsid, reason="module not found")
            continue
        if str(getattr(module, "CLSID", "")).casefold() != clsid.casefold():
            log.warning("logonui.provider_skipped", clsid=clsid, reason="CLSID mismatch")
            continue
        found[clsid.casefold()] = Provider(module.CLSID, module.NAME, module.get_serialization)
        log.info("logonui.provider_loaded", clsid=module.CLSID, name=module.NAME)
    return found
