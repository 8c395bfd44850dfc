"""Boot options: ``configs/boot.ini`` plus the ``--boot`` string, as the kernel reads them.

NTLDR hands the kernel the options of the chosen ``[operating systems]`` line (slashes
removed, upper case) as ``LoaderBlock->LoadOptions``; Phase 1 looks for SOS, NOGUIBOOT,
SAFEBOOT:… and BOOTLOG in it (ReactOS ``ntoskrnl/ex/init.c``) and CmInitSystem1 stores it
as ``Control\\SystemStartOptions`` (``CmpSetSystemValues``, ``ntoskrnl/config/cmsysini.c``).
Switches Windows does not know are ignored there; here they are kept and listed in
``BootOptions.unknown`` so the kernel can log them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from nt.regpath import REG_DWORD, REG_SZ

CONTROL_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control"
SAFEBOOT_OPTION_KEY = CONTROL_KEY + r"\SafeBoot\Option"

DEFAULT_ARC_PATH = r"multi(0)disk(0)rdisk(0)partition(1)\WINDOWS"

# InitSafeBootMode values written to SafeBoot\Option\OptionValue (ex/init.c).
SAFEBOOT_MODES: dict[str, int] = {"MINIMAL": 1, "NETWORK": 2, "DSREPAIR": 3}
NOEXECUTE_POLICIES = ("OPTIN", "OPTOUT", "ALWAYSON", "ALWAYSOFF")
FLAG_OPTIONS = (
    "SOS",
    "NOGUIBOOT",
    "BOOTLOG",
    "BASEVIDEO",
    "LASTKNOWNGOOD",
    "DEBUG",
    "PAE",
    "CONSOLE",
)
_SAFEBOOT_RE = re.compile(r"SAFEBOOT:([A-Z]+)(\(ALTERNATESHELL\))?")


class BootOptionError(ValueError):
    """A boot option or boot.ini line the model refuses; the message says how to fix it."""


class RegistryWrite(NamedTuple):
    key: str
    name: str
    type: int
    data: str | int
    # The key is created REG_OPTION_VOLATILE: it disappears at the next boot.
    volatile: bool = False


@dataclass(frozen=True)
class BootEntry:
    arc_path: str
    description: str
    options: str


@dataclass(frozen=True)
class BootIni:
    timeout: int | None
    default: str | None
    entries: tuple[BootEntry, ...]

    def default_entry(self) -> BootEntry:
        if not self.entries:
            raise BootOptionError(
                "boot.ini has no [operating systems] entry; add one such as "
                f'{DEFAULT_ARC_PATH}="Windows 10 (ntmodel)" /NOEXECUTE=OPTIN /FASTDETECT'
            )
        if self.default:
            for entry in self.entries:
                if entry.arc_path.lower() == self.default.lower():
                    return entry
        # NTLDR falls back to the first entry when "default=" names none of them.
        return self.entries[0]


@dataclass(frozen=True)
class BootOptions:
    arc_path: str = DEFAULT_ARC_PATH
    description: str = ""
    timeout: int | None = None
    options: tuple[str, ...] = ()
    sos: bool = False
    noguiboot: bool = False
    bootlog: bool = False
    basevideo: bool = False
    lastknowngood: bool = False
    debug: bool = False
    fastdetect: bool = False
    pae: bool = False
    console: bool = False
    safeboot: str | None = None
    alternate_shell: bool = False
    noexecute: str | None = None
    maxmem: int | None = None
    numproc: int | None = None
    unknown: tuple[str, ...] = ()

    @property
    def system_boot_device(self) -> str:
        """The ARC boot device (``LoaderBlock->ArcBootDeviceName``)."""
        return self.arc_path.split("\\", 1)[0]

    @property
    def boot_path(self) -> str:
        """The system directory on that device (``LoaderBlock->NtBootPathName``)."""
        _, sep, rest = self.arc_path.partition("\\")
        return "\\" + rest if sep else "\\"

    @property
    def safeboot_option(self) -> int:
        """``InitSafeBootMode``: 0 normal boot, 1 MINIMAL, 2 NETWORK, 3 DSREPAIR."""
        return SAFEBOOT_MODES.get(self.safeboot or "", 0)

    def system_start_options(self) -> str:
        """``Control\\SystemStartOptions`` as Windows writes it: each option with a leading
        space, slashes removed, upper case (``" NOEXECUTE=OPTIN FASTDETECT"``)."""
        return "".join(" " + option for option in self.options)

    def registry_writes(self, *, alternate_shell_configured: bool = True) -> list[RegistryWrite]:
        """The values the kernel writes in Phase 1. ``UseAlternateShell`` is written only
        when ``SafeBoot\\AlternateShell`` exists, as ex/init.c checks."""
        writes = [
            RegistryWrite(CONTROL_KEY, "SystemStartOptions", REG_SZ, self.system_start_options()),
            RegistryWrite(CONTROL_KEY, "SystemBootDevice", REG_SZ, self.system_boot_device),
        ]
        if self.safeboot_option:
            writes.append(
                RegistryWrite(
                    SAFEBOOT_OPTION_KEY, "OptionValue", REG_DWORD, self.safeboot_option, True
                )
            )
            if self.alternate_shell and alternate_shell_configured:
                writes.append(
                    RegistryWrite(SAFEBOOT_OPTION_KEY, "UseAlternateShell", REG_DWORD, 1, True)
                )
        return writes

    def as_dict(self) -> dict[str, Any]:
        """A msgpack-friendly map for the process parameters block."""
        data = asdict(self)
        data["options"] = list(self.options)
        data["unknown"] = list(self.unknown)
        data["system_start_options"] = self.system_start_options()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BootOptions:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["options"] = tuple(fields.get("options", ()))
        fields["unknown"] = tuple(fields.get("unknown", ()))
        return cls(**fields)


def parse_boot_ini(text: str) -> BootIni:
    """Parse boot.ini text (``[boot loader]`` and ``[operating systems]``)."""
    section = ""
    timeout: int | None = None
    default: str | None = None
    entries: list[BootEntry] = []
    for lineno, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        key, sep, value = line.partition("=")
        if section not in ("boot loader", "operating systems"):
            continue
        if not sep:
            raise BootOptionError(
                f"boot.ini line {lineno}: expected 'name=value' in [{section}], got {line!r}"
            )
        if section == "boot loader":
            name = key.strip().lower()
            if name == "timeout":
                try:
                    timeout = int(value.strip())
                except ValueError:
                    raise BootOptionError(
                        f"boot.ini line {lineno}: timeout must be a number of seconds, "
                        f"e.g. timeout=30 (got {value.strip()!r})"
                    ) from None
            elif name == "default":
                default = value.strip()
        else:
            description, options = _split_description(value.strip(), lineno)
            entries.append(BootEntry(key.strip(), description, options))
    return BootIni(timeout, default, tuple(entries))


def tokenize_options(text: str) -> list[str]:
    """``"/sos /SafeBoot:Minimal"`` → ``["SOS", "SAFEBOOT:MINIMAL"]``."""
    tokens = []
    for word in text.split():
        if not word.startswith("/") or len(word) == 1:
            raise BootOptionError(
                f"boot option {word!r} must start with '/' followed by its name, e.g. /{word.lstrip('/') or 'SOS'}"
            )
        tokens.append(word[1:].upper())
    return tokens


def parse_boot_options(
    options: str,
    extra: str = "",
    *,
    arc_path: str = DEFAULT_ARC_PATH,
    description: str = "",
    timeout: int | None = None,
) -> BootOptions:
    """Merge an entry's options with ``extra`` (``--boot``); a later switch replaces an
    earlier one of the same name."""
    merged: list[str] = []
    for token in tokenize_options(options) + tokenize_options(extra):
        name = _option_name(token)
        merged = [t for t in merged if _option_name(t) != name]
        merged.append(token)
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for token in merged:
        if not _apply(token, values):
            unknown.append(token)
    return BootOptions(
        arc_path=arc_path,
        description=description,
        timeout=timeout,
        options=tuple(merged),
        unknown=tuple(unknown),
        **values,
    )


def load_boot_options(boot_ini: str | Path | None, extra: str = "") -> BootOptions:
    """The default entry of ``boot_ini`` (or no options at all when None) plus ``extra``."""
    if boot_ini is None:
        return parse_boot_options("", extra)
    path = Path(boot_ini)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BootOptionError(
            f"{path} not found; restore configs/boot.ini from the repository"
        ) from None
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    ini = parse_boot_ini(text)
    entry = ini.default_entry()
    return parse_boot_options(
        entry.options,
        extra,
        arc_path=entry.arc_path,
        description=entry.description,
        timeout=ini.timeout,
    )


def _split_description(value: str, lineno: int) -> tuple[str, str]:
    if value.startswith('"'):
        end = value.find('"', 1)
        if end < 0:
            raise BootOptionError(
                f'boot.ini line {lineno}: the description has no closing quote; write "Windows 10 (ntmodel)"'
            )
        return value[1:end], value[end + 1 :].strip()
    description, slash, rest = value.partition("/")
    return description.strip(), (slash + rest).strip()


def _option_name(token: str) -> str:
    return re.split(r"[=:]", token, maxsplit=1)[0]


def _apply(token: str, values: dict[str, Any]) -> bool:
    """Record a known option in ``values``; False for an unknown one."""
    name = _option_name(token)
    if name in FLAG_OPTIONS:
        if token != name:
            raise BootOptionError(f"/{token}: /{name} takes no value; write /{name}")
        values[name.lower()] = True
    elif name == "FASTDETECT":
        # "/FASTDETECT:COM1" is valid boot.ini syntax: the ports to skip while detecting.
        values["fastdetect"] = True
    elif name == "SAFEBOOT":
        match = _SAFEBOOT_RE.fullmatch(token)
        if not match or match.group(1) not in SAFEBOOT_MODES:
            raise BootOptionError(
                f"/{token}: unknown safe boot mode; use /SAFEBOOT:MINIMAL, /SAFEBOOT:NETWORK "
                "or /SAFEBOOT:DSREPAIR, optionally followed by (ALTERNATESHELL)"
            )
        values["safeboot"] = match.group(1)
        values["alternate_shell"] = match.group(2) is not None
    elif name == "NOEXECUTE":
        policy = token.partition("=")[2]
        if policy not in NOEXECUTE_POLICIES:
            raise BootOptionError(
                f"/{token}: the DEP policy must be one of "
                + ", ".join(f"/NOEXECUTE={p}" for p in NOEXECUTE_POLICIES)
            )
        values["noexecute"] = policy
    elif name in ("MAXMEM", "NUMPROC"):
        _, sep, number = token.partition("=")
        if not sep or not number.isdigit() or int(number) < 1:
            unit, example = ("megabytes", 2048) if name == "MAXMEM" else ("processors", 4)
            raise BootOptionError(
                f"/{token}: /{name} needs a positive whole number of {unit}, e.g. /{name}={example}"
            )
        values[name.lower()] = int(number)
    else:
        return False
    return True
