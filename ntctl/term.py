"""Styled text for the terminal without Rich: segments of (text, style), rendered as ANSI.

Rich costs ~50 ms to import, a third of what a read-only verb may take, and ``ps``,
``logs`` and ``reg query`` only need colour and a tree. Style names are Rich's
(``"bold red"``, ``"dim"``, ``"bright_green"``, ``"white on blue"``), so the same
segments become a ``rich.text.Text`` where Rich is already loaded (the boot console,
``top``): :meth:`Styled.to_rich`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

_ATTRS = {"bold": 1, "dim": 2, "italic": 3, "underline": 4, "reverse": 7}
_COLOURS = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]


def _sgr(style: str) -> str:
    codes: list[int] = []
    background = False
    for word in style.split():
        if word == "on":
            background = True
            continue
        if word in _ATTRS:
            codes.append(_ATTRS[word])
            continue
        bright = word.startswith("bright_")
        base = word[7:] if bright else word
        if base in _COLOURS:
            n = _COLOURS.index(base) + (90 if bright else 30) + (10 if background else 0)
            codes.append(n)
        background = False
    return ";".join(map(str, codes))


def colour_enabled(stream: TextIO | None = None) -> bool:
    """Colour when the stream is a terminal, unless NO_COLOR or TERM=dumb (FORCE_COLOR wins)."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(os.environ.get("FORCE_COLOR")) or stream.isatty()


class Styled:
    """A line (or lines) of styled segments."""

    __slots__ = ("segments",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.segments: list[tuple[str, str]] = [(text, style)] if text else []

    def append(self, text: str, style: str = "") -> Styled:
        if text:
            self.segments.append((text, style))
        return self

    def extend(self, other: Styled) -> Styled:
        self.segments.extend(other.segments)
        return self

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.segments)

    def __len__(self) -> int:
        return sum(len(t) for t, _ in self.segments)

    def truncate(self, width: int, ellipsis: str = "…") -> Styled:
        """The first line, cut to ``width`` characters with an ellipsis (never wraps)."""
        out = Styled()
        left = width
        for text, style in self.segments:
            first, newline, _ = text.partition("\n")
            if len(first) > left or (len(first) == left and (newline or self._after(text))):
                out.append(first[: max(left - len(ellipsis), 0)] + ellipsis, style)
                return out
            out.append(first, style)
            left -= len(first)
            if newline:
                return out
        return out

    def _after(self, segment: str) -> bool:
        """Whether text follows ``segment`` (so cutting exactly at its end hides some)."""
        index = next(i for i, (t, _) in enumerate(self.segments) if t is segment)
        return any(t for t, _ in self.segments[index + 1 :])

    def render(self, colour: bool) -> str:
        if not colour:
            return self.plain
        parts = []
        for text, style in self.segments:
            sgr = _sgr(style) if style else ""
            parts.append(f"\x1b[{sgr}m{text}\x1b[0m" if sgr else text)
        return "".join(parts)

    def to_rich(self) -> Any:
        from rich.text import Text

        return Text.assemble(*self.segments)


def write_lines(lines: Iterable[Styled | str], stream: TextIO | None = None) -> int:
    """Write lines (styled or plain) to ``stream``; returns how many."""
    stream = stream or sys.stdout
    colour = colour_enabled(stream)
    count = 0
    for line in lines:
        stream.write((line.render(colour) if isinstance(line, Styled) else line) + "\n")
        count += 1
    return count


def width(stream: TextIO | None = None, default: int = 100) -> int:
    """The terminal's width in columns (``default`` when not a terminal)."""
    stream = stream or sys.stdout
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return int(os.environ.get("COLUMNS", default))
