"""Message schemas: a closed set of keys with exact types, checked after unpacking.

A schema is a ``dict[str, Field]``. ``validate`` returns a new dict holding only the
declared keys (optional ones filled with their default) or raises ``SchemaError``; the
port turns that into STATUS_INVALID_PARAMETER. Types are exact: a bool is not an int,
bytes are not str, unknown keys are refused (reliability-security.md §3.4 step 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 8


class SchemaError(ValueError):
    """The message does not match its schema."""


@dataclass(frozen=True)
class Field:
    optional: bool = False
    default: Any = None
    doc: str = ""

    def check(self, value: Any, path: str, depth: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Field):
    max_len: int = 1024
    nul_ok: bool = False

    def check(self, value: Any, path: str, depth: int) -> str:
        if type(value) is not str:
            raise SchemaError(f"{path}: expected str")
        if len(value) > self.max_len:
            raise SchemaError(f"{path}: longer than {self.max_len}")
        if not self.nul_ok and "\x00" in value:
            raise SchemaError(f"{path}: embedded NUL")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise SchemaError(f"{path}: not valid Unicode") from exc
        return value

    def describe(self) -> str:
        return f"str (≤ {self.max_len})"


@dataclass(frozen=True)
class Int(Field):
    lo: int = 0
    hi: int = 0xFFFFFFFF

    def check(self, value: Any, path: str, depth: int) -> int:
        if type(value) is not int:
            raise SchemaError(f"{path}: expected int")
        if not self.lo <= value <= self.hi:
            raise SchemaError(f"{path}: {value} outside [{self.lo}, {self.hi}]")
        return value

    def describe(self) -> str:
        if (self.lo, self.hi) == (0, 0xFFFFFFFF):
            return "u32"
        if (self.lo, self.hi) == (0, 2**64 - 1):
            return "u64"
        return f"int [{self.lo}, {self.hi}]"


def U32(**kw: Any) -> Int:
    return Int(lo=0, hi=0xFFFFFFFF, **kw)


def U64(**kw: Any) -> Int:
    return Int(lo=0, hi=2**64 - 1, **kw)


@dataclass(frozen=True)
class Float(Field):
    def check(self, value: Any, path: str, depth: int) -> float:
        if type(value) not in (float, int) or (type(value) is float and not math.isfinite(value)):
            raise SchemaError(f"{path}: expected a finite number")
        return float(value)

    def describe(self) -> str:
        return "float"


@dataclass(frozen=True)
class Bool(Field):
    def check(self, value: Any, path: str, depth: int) -> bool:
        if type(value) is not bool:
            raise SchemaError(f"{path}: expected bool")
        return value

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class Bin(Field):
    max_len: int = 65536

    def check(self, value: Any, path: str, depth: int) -> bytes:
        if type(value) is not bytes:
            raise SchemaError(f"{path}: expected bytes")
        if len(value) > self.max_len:
            raise SchemaError(f"{path}: longer than {self.max_len}")
        return value

    def describe(self) -> str:
        return f"bytes (≤ {self.max_len})"


@dataclass(frozen=True)
class List(Field):
    item: Field = field(default_factory=lambda: Str())
    max_len: int = 256

    def check(self, value: Any, path: str, depth: int) -> list:
        if type(value) is not list:
            raise SchemaError(f"{path}: expected list")
        if len(value) > self.max_len:
            raise SchemaError(f"{path}: more than {self.max_len} items")
        _depth(path, depth)
        return [self.item.check(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]

    def describe(self) -> str:
        return f"list[{self.item.describe()}] (≤ {self.max_len})"


@dataclass(frozen=True)
class Map(Field):
    """A nested closed record."""

    fields: dict = field(default_factory=dict)

    def check(self, value: Any, path: str, depth: int) -> dict:
        _depth(path, depth)
        return _check_record(self.fields, value, path, depth + 1)

    def describe(self) -> str:
        return (
            "{"
            + ", ".join(
                f"{k}: {f.describe()}" + (" (optional)" if f.optional else "")
                for k, f in self.fields.items()
            )
            + "}"
        )


@dataclass(frozen=True)
class Dict(Field):
    """An open map from str keys to one value type (environment blocks and the like)."""

    value: Field = field(default_factory=lambda: Str())
    max_len: int = 256
    key_len: int = 256

    def check(self, value: Any, path: str, depth: int) -> dict:
        if type(value) is not dict:
            raise SchemaError(f"{path}: expected map")
        if len(value) > self.max_len:
            raise SchemaError(f"{path}: more than {self.max_len} entries")
        _depth(path, depth)
        key = Str(max_len=self.key_len)
        return {
            key.check(k, f"{path}.<key>", depth): self.value.check(v, f"{path}.{k}", depth + 1)
            for k, v in value.items()
        }

    def describe(self) -> str:
        return f"map[str, {self.value.describe()}] (≤ {self.max_len})"


@dataclass(frozen=True)
class Value(Field):
    """Registry-style data: str, int, bytes or a list of str (depth-limited, no maps)."""

    max_len: int = 1 << 20

    def check(self, value: Any, path: str, depth: int) -> Any:
        t = type(value)
        if t is int:
            if not -(2**63) <= value < 2**64:
                raise SchemaError(f"{path}: integer out of range")
            return value
        if t in (str, bytes):
            if len(value) > self.max_len:
                raise SchemaError(f"{path}: longer than {self.max_len}")
            return Str(max_len=self.max_len).check(value, path, depth) if t is str else value
        if t is list:
            return List(item=Str(max_len=self.max_len), max_len=4096).check(value, path, depth)
        if value is None:
            return None
        raise SchemaError(f"{path}: unsupported value type {t.__name__}")

    def describe(self) -> str:
        return "str | int | bytes | list[str] | nil"


@dataclass(frozen=True)
class OneOf(Field):
    """Any of the given field types (first that accepts wins)."""

    choices: tuple = ()

    def check(self, value: Any, path: str, depth: int) -> Any:
        for choice in self.choices:
            try:
                return choice.check(value, path, depth)
            except SchemaError:
                continue
        raise SchemaError(f"{path}: matches none of {self.describe()}")

    def describe(self) -> str:
        return " | ".join(c.describe() for c in self.choices)


@dataclass(frozen=True)
class Nil(Field):
    """msgpack nil (None): used with ``OneOf`` for a field that may be absent in value."""

    def check(self, value: Any, path: str, depth: int) -> None:
        if value is not None:
            raise SchemaError(f"{path}: expected nil")
        return None

    def describe(self) -> str:
        return "nil"


@dataclass(frozen=True)
class Tuple(Field):
    """A fixed-length array, one type per position (msgpack has no tuples)."""

    items: tuple = ()

    def check(self, value: Any, path: str, depth: int) -> list:
        if type(value) not in (list, tuple) or len(value) != len(self.items):
            raise SchemaError(f"{path}: expected an array of {len(self.items)}")
        _depth(path, depth)
        return [
            f.check(v, f"{path}[{i}]", depth + 1)
            for i, (f, v) in enumerate(zip(self.items, value, strict=True))
        ]

    def describe(self) -> str:
        return "[" + ", ".join(f.describe() for f in self.items) + "]"


def Nullable(field: Field) -> OneOf:
    """``field`` or nil."""
    return OneOf(choices=(field, Nil()))


def _depth(path: str, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise SchemaError(f"{path}: nested deeper than {MAX_DEPTH}")


def _check_record(schema: dict, body: Any, path: str, depth: int) -> dict:
    if type(body) is not dict:
        raise SchemaError(f"{path or 'body'}: expected map")
    extra = body.keys() - schema.keys()
    if extra:
        raise SchemaError(f"{path or 'body'}: unknown keys {sorted(map(str, extra))}")
    out = {}
    for name, fld in schema.items():
        sub = f"{path}.{name}" if path else name
        if name in body:
            out[name] = fld.check(body[name], sub, depth)
        elif fld.optional:
            out[name] = fld.default
        else:
            raise SchemaError(f"{sub}: missing")
    return out


def validate(schema: dict, body: Any) -> dict:
    """Check ``body`` against ``schema``; return the cleaned dict or raise SchemaError."""
    return _check_record(schema, body, "", 0)


def describe(schema: dict) -> list[tuple[str, str]]:
    """(field, type) rows for PROTOCOL.md."""
    rows = []
    for name, fld in schema.items():
        kind = fld.describe() + (" (optional)" if fld.optional else "")
        rows.append((name, kind))
    return rows


@dataclass(frozen=True)
class Api:
    """One entry of a port's API table."""

    number: int
    name: str
    request: dict = field(default_factory=dict)
    reply: dict = field(default_factory=dict)
    doc: str = ""


@dataclass(frozen=True)
class Protocol:
    """A port protocol: its API table, message limit, connection-info schema, and the
    statuses its server answers beyond the port layer's ((NTSTATUS, when) pairs; a test
    checks them against the server's source, PROTOCOL.md lists them)."""

    title: str
    max_message_length: int
    apis: tuple = ()
    connect_info: dict = field(default_factory=dict)
    doc: str = ""
    statuses: tuple = ()

    def by_number(self) -> dict[int, Api]:
        """API number -> row; built once (a port looks it up on every request)."""
        table = self.__dict__.get("_by_number")
        if table is None:
            table = {a.number: a for a in self.apis}
            object.__setattr__(self, "_by_number", table)
        return table

    def by_name(self) -> dict[str, Api]:
        """API name -> row; built once (client stubs look it up on every call)."""
        table = self.__dict__.get("_by_name")
        if table is None:
            table = {a.name: a for a in self.apis}
            object.__setattr__(self, "_by_name", table)
        return table
