"""/proc/cpuinfo as Linux prints it: one dict per ``processor`` block.

Read by the kernel (the HARDWARE hive) and by smss (PROCESSOR_* environment values).
"""

from __future__ import annotations


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """One dict per ``processor`` block (field names as Linux spells them)."""
    cpus: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if "processor" in current:
                cpus.append(current)
            current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    return cpus
