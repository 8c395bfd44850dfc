"""Real-scale registry data for tests and benchmarks, generated deterministically.

A real SYSTEM hive has 15k-23k keys and 36k-51k values, and a ``reg export`` of one
control set is 9-23 MB of UTF-16. ``control_set`` builds a tree of that shape (700+
services with their Parameters/Security/Enum subkeys, device-property keys under Enum
with ``hex(ffff00xx)`` values, Control with large binary values), seeded so the same
call always gives the same bytes; ``with_config`` puts the shipped ``configs/SYSTEM.reg``
underneath, so a machine built from it boots.
"""

from __future__ import annotations

import random
from pathlib import Path

from nt import regfile
from tests.regfwriter import Key

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PREFIX = "HKEY_LOCAL_MACHINE\\SYSTEM"


def _sz(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


def _dw(n: int) -> bytes:
    return n.to_bytes(4, "little")


def control_set(
    root: Key,
    services: int = 760,
    devices: int = 2200,
    seed: int = 7,
    name: str = "ControlSet001",
) -> Key:
    """Add a control set of real-hive shape below ``root`` (or extend an existing one)."""
    rnd = random.Random(seed)
    cs = _child(root, name)
    svc = _child(cs, "Services")
    groups = ["Boot Bus Extender", "System Bus Extender", "SCSI miniport", "Network", "NDIS", ""]
    for i in range(services):
        s = svc.add(f"Svc{i:04d}")
        s.values += [
            ("Type", 4, _dw(rnd.choice([1, 2, 16, 32]))),
            ("Start", 4, _dw(rnd.randrange(5))),
            ("ErrorControl", 4, _dw(rnd.randrange(4))),
            ("ImagePath", 2, _sz(f"\\SystemRoot\\System32\\drivers\\svc{i}.sys")),
            ("DisplayName", 1, _sz(f"@%SystemRoot%\\system32\\svc{i}.dll,-{100 + i}")),
            ("Description", 1, _sz("A service of the generated control set. " * 3)),
            ("Group", 1, _sz(rnd.choice(groups))),
            ("DependOnService", 7, _sz(f"Svc{rnd.randrange(services):04d}") + b"\0\0"),
            ("FailureActions", 3, bytes(rnd.randrange(256) for _ in range(44))),
        ]
        p = s.add("Parameters")
        p.values += [("ServiceDll", 2, _sz(f"%SystemRoot%\\System32\\svc{i}.dll"))]
        p.values += [(f"Setting{j}", 4, _dw(j)) for j in range(rnd.randrange(6))]
        s.add("Security").values.append(
            ("Security", 3, bytes(rnd.randrange(256) for _ in range(180)))
        )
        e = s.add("Enum")
        e.values += [("0", 1, _sz(f"ROOT\\LEGACY_SVC{i}\\0000")), ("Count", 4, _dw(1))]
        for t in range(rnd.randrange(5)):
            s.add(f"TriggerInfo{t}").values += [
                ("Type", 4, _dw(t)),
                ("Data0", 3, bytes(rnd.randrange(256) for _ in range(60))),
            ]
    enum = _child(cs, "Enum")
    pci = enum.add("PCI")
    for d in range(devices):
        dev = pci.add(f"VEN_{d:04X}&DEV_{rnd.randrange(65536):04X}").add(f"{d:X}&0&00")
        dev.values += [
            ("DeviceDesc", 1, _sz(f"@oem{d}.inf,%dev{d}%;Generated device {d}")),
            ("HardwareID", 7, _sz(f"PCI\\VEN_{d:04X}") + _sz("PCI\\CC_0600") + b"\0\0"),
            ("ConfigFlags", 4, _dw(0)),
            ("Driver", 1, _sz(f"{{4d36e97d-e325-11ce-bfc1-08002be10318}}\\{d:04d}")),
            ("Mfg", 1, _sz("@machine.inf,%generic%;(Standard system devices)")),
            ("LocationInformation", 1, _sz(f"PCI bus 0, device {d % 32}, function {d % 8}")),
            ("Capabilities", 4, _dw(rnd.randrange(256))),
            ("UINumber", 4, _dw(d)),
        ]
        props = dev.add("Properties").add("{a8b865dd-2e3d-4094-ad97-e593a70c75d6}")
        for pid in range(3):
            props.add(f"{pid:04d}").values.append(
                ("", 0xFFFF0012, bytes(rnd.randrange(256) for _ in range(24)))
            )
    ctl = _child(cs, "Control")
    for c in range(40):
        k = ctl.add(f"Class{c:02d}")
        k.values.append(("Blob", 3, rnd.randbytes(40000)))
    return cs


def _child(key: Key, name: str) -> Key:
    for k in key.subkeys:
        if k.name.casefold() == name.casefold():
            return k
    return key.add(name)


def with_config(root: Key | None = None) -> Key:
    """A hive root holding the shipped configs/SYSTEM.reg (so the machine boots)."""
    root = root or Key("ROOT")
    nodes = {"": root}
    for op in regfile.parse((REPO / "configs" / "SYSTEM.reg").read_bytes()):
        rel = op.path[len(SYSTEM_PREFIX) + 1 :] if op.path != SYSTEM_PREFIX else ""
        node = nodes.get(rel.casefold())
        if node is None:
            node = root
            for part in rel.split("\\"):
                node = _child(node, part)
            nodes[rel.casefold()] = node
        if isinstance(op, regfile.SetValue):
            node.values = [v for v in node.values if v[0].casefold() != op.name.casefold()]
            node.values.append((op.name, op.type, op.stored()))
    return root


def count(root: Key) -> tuple[int, int]:
    keys = values = 0
    stack = [root]
    while stack:
        k = stack.pop()
        keys += 1
        values += len(k.values)
        stack.extend(k.subkeys)
    return keys, values
