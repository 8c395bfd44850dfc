"""The ``.reg`` text codec: what ``regedit`` / ``reg export`` write and ``reg import`` reads.

First boot imports ``configs/*.reg`` and ``ntctl reg import/export`` use the same code, so
a user can load keys exported from a real Windows machine. ``parse`` turns a file into a
list of operations; ``dumps`` writes operations back in the same format, so that
``parse(dumps(ops)) == ops`` for operations in export order (each key's values follow its
``SetKey``).

Grammar handled: the "Windows Registry Editor Version 5.00" and "REGEDIT4" headers; UTF-16
(with BOM, what regedit writes), UTF-8 with or without BOM (and ANSI for REGEDIT4); ``[key]``
and ``[-key]``; ``"name"="text"`` with the escapes ``\\\\`` and ``\\"``; ``@=`` for the default
value; ``dword:``; ``hex:`` and ``hex(N):`` with ``\\`` line continuation; ``"name"=-``;
``;`` comments and blank lines. Data comes out in the HACKING.md Python forms.

What real exports hold is kept byte for byte: every ``hex(N):`` value (any type up to
``hex(ffffffff):``, REG_SZ without its NUL, REG_MULTI_SZ with or without trailing empty
strings, a REG_QWORD of the "wrong" length) carries its exact bytes in ``SetValue.raw``,
which the hive stores and ``dumps`` writes back. A ``"string"`` may hold a raw line break
(regedit writes one as it is, CR LF or LF, and it is kept as written) or Wine's ``\\n``
and ``\\r`` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nt.regpath import (
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_QWORD,
    REG_SZ,
    TYPE_NAMES,
    RegistryError,
    user_path,
)

__all__ = [
    "DeleteKey",
    "DeleteValue",
    "Op",
    "RegFileError",
    "SetKey",
    "SetValue",
    "decode_data",
    "dump_bytes",
    "decode_lenient",
    "dump_lines",
    "dumps",
    "encode_data",
    "parse",
    "parse_lines",
]

HEADER_V5 = "Windows Registry Editor Version 5.00"
HEADER_V4 = "REGEDIT4"
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]{1,2}")
_HEX_TYPE = re.compile(r"hex(?:\(([0-9A-Fa-f]{1,8})\))?:", re.IGNORECASE)
_DWORD = re.compile(r"dword:([0-9A-Fa-f]{1,8})", re.IGNORECASE)
_WRAP = 77  # regedit wraps hex data once a line reaches column 77 (Wine: MAX_HEX_CHARS)


class RegFileError(ValueError):
    """A .reg file is malformed; ``line`` is the 1-based line where the problem is."""

    def __init__(self, message: str, line: int) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class SetKey:
    """``[path]``: create the key (and its parents) if it does not exist."""

    path: str


@dataclass(frozen=True)
class DeleteKey:
    """``[-path]``: delete the key and everything below it."""

    path: str


@dataclass(frozen=True)
class SetValue:
    """``"name"=data`` under ``path``; ``name`` "" is the default value (``@``)."""

    path: str
    name: str
    type: int
    data: Any
    # The exact bytes to store (from ``hex(N):`` or a binary hive); None: encode ``data``.
    # Not compared: two ops are equal when they mean the same value.
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def stored(self) -> bytes:
        """The bytes the hive keeps for this value."""
        return self.raw if self.raw is not None else encode_data(self.type, self.data)


@dataclass(frozen=True)
class DeleteValue:
    """``"name"=-`` under ``path``."""

    path: str
    name: str


Op = SetKey | DeleteKey | SetValue | DeleteValue


# --- value data <-> the Windows binary form -------------------------------------------


def encode_data(type_: int, data: Any) -> bytes:
    """The bytes Windows stores for a value (UTF-16LE strings with NUL terminators)."""
    if type_ in (REG_SZ, REG_EXPAND_SZ):
        return (data + "\0").encode("utf-16-le")
    if type_ == REG_MULTI_SZ:
        return ("".join(s + "\0" for s in data) + "\0").encode("utf-16-le")
    if type_ == REG_DWORD:
        return int(data).to_bytes(4, "little")
    if type_ == REG_QWORD:
        return int(data).to_bytes(8, "little")
    return bytes(data)


def decode_data(type_: int, raw: bytes, ansi: bool = False) -> Any:
    """Windows bytes -> Python data; ``ansi`` for REGEDIT4 files (8-bit strings).

    Strings end at the first NUL, as the Win32 API reads them; a multi-string ends at its
    first empty string. Raises ValueError when the bytes cannot be that type.
    """
    tname = TYPE_NAMES.get(type_, f"type {type_}")
    if type_ in (REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ):
        if ansi:
            text = raw.decode("cp1252", errors="replace")
        else:
            if len(raw) % 2:
                raise ValueError(
                    f"{tname} data has an odd number of bytes ({len(raw)}); it is UTF-16LE, "
                    "two bytes per character"
                )
            try:
                text = raw.decode("utf-16-le")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{tname} data is not valid UTF-16LE: {exc.reason}") from None
        if type_ != REG_MULTI_SZ:
            return text.split("\0", 1)[0]
        items: list[str] = []
        for item in text.split("\0"):
            if item == "":
                break
            items.append(item)
        return items
    if type_ in (REG_DWORD, REG_QWORD):
        width = 4 if type_ == REG_DWORD else 8
        if len(raw) != width:
            raise ValueError(f"{tname} data must be exactly {width} bytes, got {len(raw)}")
        return int.from_bytes(raw, "little")
    return bytes(raw)


def decode_lenient(type_: int, raw: bytes) -> Any:
    """``decode_data``, or the bytes themselves when they are not that type's form.

    Real hives hold such values (an odd-length REG_SZ, a 2-byte REG_QWORD); readers get
    them as bytes rather than an error, and the stored bytes stay as they were.
    """
    try:
        return decode_data(type_, raw)
    except ValueError:
        return bytes(raw)


# --- parsing ----------------------------------------------------------------------------


def _decode_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    if data.startswith(b"\xff\xfe"):
        codec, body = "utf-16-le", data[2:]
    elif data.startswith(b"\xfe\xff"):
        codec, body = "utf-16-be", data[2:]
    elif data.startswith(b"\xef\xbb\xbf"):
        codec, body = "utf-8", data[3:]
    elif len(data) >= 2 and data[0] != 0 and data[1] == 0:
        codec, body = "utf-16-le", data  # UTF-16 without a BOM
    else:
        codec, body = "utf-8", data
        if data.lstrip().upper().startswith(HEADER_V4.encode()):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("cp1252", errors="replace")  # REGEDIT4 files are ANSI
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].decode(codec, errors="replace").count("\n") + 1
        raise RegFileError(
            f"bytes are not valid {codec.upper()} ({exc.reason}); save the file as UTF-16 "
            "(regedit's format) or UTF-8",
            line,
        ) from None


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
# regedit escapes \ and "; Wine's regedit also writes a line feed as \n and a CR as \r.
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n", "r": "\r"}
_HEX_FAST = re.compile(r"(?:[0-9A-Fa-f]{2},)*[0-9A-Fa-f]{2},?")


def _unescape(body: str, line: int) -> str:
    if "\\" not in body:
        return body

    def one(m: re.Match[str]) -> str:
        ch = m.group(1)
        if ch not in _UNESCAPE:
            raise RegFileError(
                f"unknown escape '\\{ch}' in a string: the escapes are \\\\, \\\", and Wine's "
                "\\n and \\r; write a literal backslash as \\\\",
                line,
            )
        return _UNESCAPE[ch]

    return _ESCAPE.sub(one, body)


def _parse_quoted(text: str, pos: int, line: int) -> tuple[str, int] | None:
    """A ``"..."`` string at ``text[pos]``: (value, index after it), or None if unclosed."""
    m = _QUOTED.match(text, pos)
    if m is None:
        return None
    return _unescape(m.group(1), line), m.end()


def _hex_bytes(segments: list[tuple[int, str]]) -> bytes:
    joined = "".join(seg.strip() for _, seg in segments)
    if not joined:
        return b""  # "hex:" with no bytes
    if _HEX_FAST.fullmatch(joined):  # what regedit writes: two digits, commas
        return bytes.fromhex(joined.replace(",", ""))
    out = bytearray()
    for line, seg in segments:
        if not seg.strip():
            continue  # a prefix wrapped before its first byte
        tokens = [t.strip() for t in seg.split(",")]
        if tokens[-1] == "":
            tokens.pop()  # the comma before a '\\' continuation
        for tok in tokens:
            if not _HEX_TOKEN.fullmatch(tok):
                what = "empty byte between commas" if tok == "" else f"{tok!r} is not a hex byte"
                raise RegFileError(
                    f"{what}: write bytes as two hex digits separated by commas, as in hex:01,ff",
                    line,
                )
            out.append(int(tok, 16))
    return bytes(out)


class _Parser:
    def __init__(self, text: str) -> None:
        parts = re.split(r"(\r\n|\r|\n)", text)
        self.lines = parts[0::2]
        self.seps = parts[1::2]  # the line break after each line, kept for raw LFs in strings
        self.i = 0
        self.ansi = False
        self.ops: list[Op] = []
        self.op_lines: list[int] = []  # the line of each op, for errors found later
        self.key: str | None = None
        self.key_deleted = False

    def run(self) -> list[Op]:
        self._header()
        lines = self.lines
        while self.i < len(lines):
            lineno = self.i + 1
            line = lines[self.i].strip()
            self.i += 1
            if not line or line[0] == ";":
                continue
            if line[0] == "[":
                self._key_line(line, lineno)
                self.op_lines.append(lineno)
            elif line[0] in ('"', "@"):
                self._value_line(line, lineno)
                self.op_lines.append(lineno)
            else:
                raise RegFileError(
                    f'unexpected text {line[:40]!r}: a line is a [key], a "name"=data, '
                    "a ; comment or blank",
                    lineno,
                )
        return self.ops

    def _header(self) -> None:
        while self.i < len(self.lines) and not self.lines[self.i].strip():
            self.i += 1
        first = self.lines[self.i].strip() if self.i < len(self.lines) else ""
        self.i += 1
        if first == HEADER_V5:
            return
        if first == HEADER_V4:
            self.ansi = True
            return
        raise RegFileError(
            f"missing header: the first line must be {HEADER_V5!r} (or {HEADER_V4!r} for old "
            f"files), found {first[:40]!r}",
            self.i,
        )

    def _key_line(self, line: str, lineno: int) -> None:
        if not line.endswith("]"):
            raise RegFileError(
                "a key line must end with ']', as in [HKEY_LOCAL_MACHINE\\X]", lineno
            )
        inner = line[1:-1]
        delete = inner.startswith("-")
        if delete:
            inner = inner[1:]
        if not inner:
            raise RegFileError("empty key name in [ ]: write the full key path", lineno)
        try:
            path = user_path(inner)
        except RegistryError as exc:
            raise RegFileError(f"bad key path {inner[:60]!r}: {exc.message}", lineno) from None
        self.key, self.key_deleted = path, delete
        self.ops.append(DeleteKey(path) if delete else SetKey(path))

    def _value_line(self, line: str, lineno: int) -> None:
        if self.key is None:
            raise RegFileError(
                "value outside a key: add a [HKEY_LOCAL_MACHINE\\...] line above it", lineno
            )
        if self.key_deleted:
            raise RegFileError(
                "value under a deleted key [-...]: values need a [key] line, not [-key]", lineno
            )
        if line[0] == "@":
            name, pos = "", 1
        else:
            got = _parse_quoted(line, 0, lineno)
            if got is None:
                raise RegFileError('value name has no closing quote: end it with "', lineno)
            name, pos = got
        rest = line[pos:].lstrip()
        if not rest.startswith("="):
            raise RegFileError("expected '=' after the value name, as in \"name\"=data", lineno)
        data = rest[1:].strip()
        self.ops.append(self._value(name, data, lineno))

    def _string(self, data: str, lineno: int) -> str:
        """A quoted REG_SZ; an unclosed quote takes the following lines, breaks and all."""
        got = _parse_quoted(data, 0, lineno)
        if got is None:
            # regedit writes a line feed inside a string as it is: the string goes on
            # on the next line(s). Re-read from the unstripped line to keep its spaces.
            raw_line = self.lines[lineno - 1]
            stripped = raw_line.strip()
            start = len(raw_line) - len(raw_line.lstrip()) + len(stripped) - len(data)
            text = raw_line[start:]
            i = lineno - 1
            while got is None:
                if i >= len(self.seps):
                    raise RegFileError('string has no closing quote: end it with "', lineno)
                text += self.seps[i] + self.lines[i + 1]
                i += 1
                got = _parse_quoted(text, 0, lineno)
            self.i = i + 1
            data, end = text, got[1]
        else:
            end = got[1]
        if data[end:].strip():
            raise RegFileError(
                f"unexpected text {data[end:][:30]!r} after the closing quote", lineno
            )
        return got[0]

    def _value(self, name: str, data: str, lineno: int) -> Op:
        assert self.key is not None
        if data == "-":
            return DeleteValue(self.key, name)
        if data.startswith('"'):
            return SetValue(self.key, name, REG_SZ, self._string(data, lineno))
        m = _DWORD.fullmatch(data)
        if m:
            return SetValue(self.key, name, REG_DWORD, int(m.group(1), 16))
        if data[:5].lower().startswith("dword"):
            raise RegFileError("dword needs 1 to 8 hex digits, as in dword:0000001f", lineno)
        m = _HEX_TYPE.match(data)
        if not m:
            raise RegFileError(
                f'unknown data {data[:30]!r}: use "text", dword:XXXXXXXX, hex:.., hex(N):.. '
                "or - to delete",
                lineno,
            )
        type_ = int(m.group(1), 16) if m.group(1) else REG_BINARY
        segments = [(lineno, data[m.end() :])]
        while segments[-1][1].endswith("\\"):
            last_line, last = segments[-1]
            segments[-1] = (last_line, last[:-1])
            if self.i >= len(self.lines):
                raise RegFileError(
                    "the file ends after a '\\' continuation: remove the '\\'", last_line
                )
            segments.append((self.i + 1, self.lines[self.i].strip()))
            self.i += 1
        raw = _hex_bytes(segments)
        if self.ansi and type_ in (REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ):
            # REGEDIT4 strings are 8-bit: stored as the UTF-16 Windows would convert them to.
            value = decode_data(type_, raw, ansi=True)
            return SetValue(self.key, name, type_, value)
        return SetValue(self.key, name, type_, decode_lenient(type_, raw), raw=raw)


def parse(data: bytes | str) -> list[Op]:
    """Parse a .reg file (bytes in any regedit encoding, or text) into operations."""
    return _Parser(_decode_text(data)).run()


def parse_lines(data: bytes | str) -> tuple[list[Op], list[int]]:
    """``parse``, with the line each operation starts on (to name it in a later error)."""
    parser = _Parser(_decode_text(data))
    return parser.run(), parser.op_lines


# --- writing ----------------------------------------------------------------------------


def _escape(text: str, what: str) -> str:
    if "\r" in text or "\n" in text:
        raise ValueError(f"{what} {text[:40]!r} contains a line break; .reg cannot hold it")
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _hex_lines(prefix: str, raw: bytes) -> list[str]:
    """regedit's layout: after each ``xx,`` the column grows by 3, and once it reaches 77
    the line ends with ``\\`` and the next starts with two spaces, so a continuation line
    holds 25 bytes and ``"ImagePath"=hex(2):`` 20 on its first line, as Windows writes
    them (Wine's ``export_hex_data``; ReactOS wraps at 76, one byte early on some lines).
    No break after the last byte.
    """
    n = len(raw)
    text = raw.hex(",")  # byte i is text[3i:3i+2]
    lines: list[str] = []
    cur, col, i = prefix, len(prefix), 0
    while i < n:
        k = max(1, -(-(_WRAP - col) // 3))  # bytes until the column reaches 77
        if i + k >= n:
            lines.append(cur + text[3 * i :])
            return lines
        lines.append(cur + text[3 * i : 3 * (i + k)] + "\\")
        cur, col, i = "  ", 2, i + k
    lines.append(cur)
    return lines


def _value_lines(op: SetValue) -> list[str]:
    name, type_ = op.name, op.type
    head = "@=" if name == "" else f'"{_escape(name, "value name")}"='
    raw = op.stored()
    if type_ == REG_SZ:
        text = op.data if isinstance(op.data, str) else ""
        # The "text" form only when it gives back exactly these bytes on import.
        plain = isinstance(op.data, str) and "\r" not in text and "\n" not in text
        if plain and (op.raw is None or raw == encode_data(REG_SZ, text)):
            return [f'{head}"{_escape(text, "string")}"']
    if type_ == REG_DWORD and len(raw) == 4:
        return [f"{head}dword:{int.from_bytes(raw, 'little'):08x}"]
    tag = "hex:" if type_ == REG_BINARY else f"hex({type_:x}):"
    return _hex_lines(head + tag, raw)


def dumps(ops: Iterable[Op]) -> str:
    """Write operations as regedit does (version 5.00 header, CRLF, wrapped hex)."""
    return "".join(dump_lines(ops, header=True)) + "\r\n"  # regedit ends with a blank line


def dump_lines(ops: Iterable[Op], header: bool = False, key: str | None = None) -> list[str]:
    """``dumps`` in pieces (each ends with CRLF), for writing an export as it streams.

    ``key`` is the key the previous piece ended in, so a value continues under it.
    """
    out = [HEADER_V5] if header else []
    for op in ops:
        path = user_path(op.path)
        if "\r" in path or "\n" in path:
            raise ValueError(f"key path {path[:60]!r} contains a line break")
        if isinstance(op, SetKey | DeleteKey):
            out += ["", f"[-{path}]" if isinstance(op, DeleteKey) else f"[{path}]"]
            key = path if isinstance(op, SetKey) else None
            continue
        if path != key:
            out += ["", f"[{path}]"]
            key = path
        if isinstance(op, DeleteValue):
            head = "@" if op.name == "" else f'"{_escape(op.name, "value name")}"'
            out.append(f"{head}=-")
        else:
            out += _value_lines(op)
    return [line + "\r\n" for line in out]


def dump_bytes(ops: Iterable[Op]) -> bytes:
    """``dumps`` encoded as ``reg export`` writes files: UTF-16LE with a BOM."""
    return b"\xff\xfe" + dumps(ops).encode("utf-16-le")
