"""docs/HACKING.md's import rules, checked on the source the way PROTOCOL.md is checked for
staleness: a rule the code breaks fails here, so the document stays true.

Every ``import`` and ``from ... import`` is read with ``ast`` (function-level ones too).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HACKING = REPO / "docs" / "HACKING.md"


def imports(path: Path) -> set[str]:
    """Top-level package.module names ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = path.relative_to(REPO).with_suffix("").parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = ".".join(here[: len(here) - node.level])
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def sources(top: str) -> list[Path]:
    return sorted((REPO / top).rglob("*.py"))


def stated_nt_exceptions() -> set[str]:
    """The nt/ modules HACKING.md allows to import ports/: "(except `nt/a.py`, ...)"."""
    text = HACKING.read_text(encoding="utf-8")
    rule = next(item for item in text.split("\n- ") if item.startswith("`nt/` never imports"))
    rule = rule.split("(except", 1)[1].split(")", 1)[0]
    return set(re.findall(r"`nt/(\w+\.py)`", rule))


def test_hacking_names_the_nt_modules_that_may_import_ports():
    assert stated_nt_exceptions() == {
        "bootstrap.py",
        "syscalls.py",
        "csrclient.py",
        "scdispatch.py",
    }


def test_hacking_lists_only_modules_that_exist():
    text = HACKING.read_text(encoding="utf-8")
    for path in re.findall(r"`((?:nt|ports|processes|ntctl|tests|docs)/[\w/]+\.\w+)`", text):
        assert (REPO / path).exists(), path
    layout = text.split("```")[1]  # the layout block: nt/ and ports/ modules by name
    for top in ("nt", "ports"):
        block = layout.split(f"\n{top}/", 1)[1].split("\n", 1)[0] + layout.split(f"\n{top}/", 1)[1]
        rows = block.split("\n")
        names = []
        for row in rows[: next(i for i, r in enumerate(rows[1:], 1) if not r.startswith(" "))]:
            names += re.findall(r"\b(\w+)\.py\b", row)
        for name in names:
            assert (REPO / top / f"{name}.py").exists(), f"{top}/{name}.py"


@pytest.mark.parametrize("path", sources("ports"), ids=lambda p: p.name)
def test_ports_never_import_processes(path):
    assert not {m for m in imports(path) if m.split(".")[0] == "processes"}


@pytest.mark.parametrize("path", sources("nt"), ids=lambda p: p.name)
def test_nt_imports_ports_only_where_hacking_says(path):
    found = imports(path)
    assert not {m for m in found if m.split(".")[0] == "processes"}
    if path.name not in stated_nt_exceptions():
        assert not {m for m in found if m.split(".")[0] == "ports"}


@pytest.mark.parametrize("path", sources("processes"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_process_package_imports_another(path):
    own = path.relative_to(REPO / "processes").parts[0]
    others = {m.split(".")[1] for m in imports(path) if m.startswith("processes.")}
    assert others <= {own}


@pytest.mark.parametrize("path", sources("ntctl"), ids=lambda p: p.name)
def test_ntctl_imports_no_process_package(path):
    assert not {m for m in imports(path) if m.split(".")[0] == "processes"}
