"""Frames, MACs and schemas as pure functions: examples plus Hypothesis properties.

``wire.verify`` must reject any change to a signed frame before anything is unpacked,
``wire.unpack_body`` must turn every msgpack failure into ``WireError``, and
``schema.validate`` must raise nothing but ``SchemaError`` whatever it is given
(reliability-security.md §3.4 steps 2-5).
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ports import csr, kernel, sb, sm, wire
from ports.contract import CONNECT_SCHEMA
from ports.schema import MAX_DEPTH, U32, List, SchemaError, validate

KEY = bytes(range(32))
LIMIT = 1 << 16

# -- examples ----------------------------------------------------------------------------


def test_header_is_28_bytes_little_endian_in_field_order() -> None:
    frames = wire.encode(KEY, wire.LPC_REQUEST, 0x01020304, 5, 6, 0x00010002, {}, flags=0x0708)
    assert wire.HEADER.size == 28
    assert frames[0] == bytes.fromhex(
        "01"  # version
        "01"  # LPC_REQUEST
        "0807"  # flags
        "04030201"  # connection id
        "0500000000000000"  # sequence
        "0600000000000000"  # message id
        "02000100"  # code: the API number
    )
    assert frames[1] == b"\x80"
    assert len(frames[2]) == wire.MAC_SIZE


def test_negative_status_is_carried_as_its_u32_pattern() -> None:
    header, _ = wire.verify(KEY, wire.encode(KEY, wire.LPC_REPLY, 1, 1, 1, -1073741811, {}))
    assert header.code == 0xC000000D


def test_verify_checks_the_mac_before_looking_at_the_body() -> None:
    bomb = b"\x91" * 100_000 + b"\x01"
    header, body, tag = wire.encode(KEY, wire.LPC_REQUEST, 1, 1, 1, 1, bomb)
    with pytest.raises(wire.WireError) as err:
        wire.verify(bytes(32), [header, body, tag])
    assert err.value.reason == "bad_mac"
    assert wire.verify(KEY, [header, body, tag])[1] == bomb  # verified, still packed


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        (lambda f: f[:2], "bad_frame"),
        (lambda f: [*f, b""], "bad_frame"),
        (lambda f: [f[0][:-1], f[1], f[2]], "bad_frame"),
        (lambda f: [f[0], f[1], f[2][:-1]], "bad_frame"),
        (lambda f: [f[0], f[1] + b"\x00", f[2]], "bad_mac"),
    ],
    ids=["two frames", "four frames", "short header", "short mac", "longer body"],
)
def test_verify_rejects_wrong_shapes(frames: Any, reason: str) -> None:
    signed = wire.encode(KEY, wire.LPC_REQUEST, 1, 1, 1, 1, {"a": 1})
    with pytest.raises(wire.WireError) as err:
        wire.verify(KEY, frames(signed))
    assert err.value.reason == reason


def test_verify_rejects_another_protocol_version_even_when_signed() -> None:
    header = wire.HEADER.pack(2, wire.LPC_REQUEST, 0, 1, 1, 1, 1)
    with pytest.raises(wire.WireError) as err:
        wire.verify(KEY, [header, b"\x80", wire.mac(KEY, header, b"\x80")])
    assert err.value.reason == "bad_version"


@pytest.mark.parametrize(
    "body",
    [
        msgpack.packb({"t": msgpack.ExtType(42, b"x")}),
        msgpack.packb({"t": msgpack.Timestamp(1, 0)}),
        b"\x91" * 100_000 + b"\x01",
        b"\xdd\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xc1",
        msgpack.packb({"a": 1}) + b"\x00",
        msgpack.packb({"a": "bc"})[:-1],
        b"\xa2\xff\xfe",
        msgpack.packb({1: 2}),
        msgpack.packb(list(range(wire.MAX_ARRAY + 1))),
    ],
    ids=[
        "ExtType(42)",
        "Timestamp",
        "nesting 100000",
        "array of 2**32",
        "str of 4 GiB",
        "0xC1",
        "trailing bytes",
        "truncated",
        "invalid UTF-8",
        "int map key",
        "array over MAX_ARRAY",
    ],
)
def test_unpack_body_turns_every_decoder_failure_into_wire_error(body: bytes) -> None:
    with pytest.raises(wire.WireError) as err:
        wire.unpack_body(body, LIMIT * 4)
    assert err.value.reason == "bad_message"


def test_unpack_body_refuses_a_body_over_the_limit_before_decoding() -> None:
    with pytest.raises(wire.WireError) as err:
        wire.unpack_body(msgpack.packb("x" * 100), 50)
    assert err.value.reason == "too_long"


# -- properties --------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
msgpack_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=25,
)
bodies = st.dictionaries(st.text(max_size=12), msgpack_values, max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    mtype=st.sampled_from(sorted(wire.MESSAGE_TYPES)),
    flags=st.integers(0, 0xFFFF),
    conn=u32,
    seq=u64,
    msg_id=u64,
    code=u32,
    body=bodies,
)
def test_encode_verify_unpack_round_trip(
    mtype: int, flags: int, conn: int, seq: int, msg_id: int, code: int, body: dict
) -> None:
    frames = wire.encode(KEY, mtype, conn, seq, msg_id, code, body, flags=flags)
    header, packed = wire.verify(KEY, frames)
    assert header == wire.Header(wire.PROTOCOL_VERSION, mtype, flags, conn, seq, msg_id, code)
    assert wire.unpack_body(packed, LIMIT) == body


@settings(max_examples=150, deadline=None)
@given(body=bodies, data=st.data())
def test_any_byte_flip_in_a_signed_frame_is_rejected(body: dict, data: st.DataObject) -> None:
    frames = wire.encode(KEY, wire.LPC_REQUEST, 7, 9, 11, 13, body)
    index = data.draw(st.integers(0, 2), label="frame")
    pos = data.draw(st.integers(0, len(frames[index]) - 1), label="byte")
    mask = data.draw(st.integers(1, 255), label="xor")
    mutated = list(frames)
    frame = bytearray(mutated[index])
    frame[pos] ^= mask
    mutated[index] = bytes(frame)
    with pytest.raises(wire.WireError) as err:
        wire.verify(KEY, mutated)
    assert err.value.reason == "bad_mac"


@settings(max_examples=150, deadline=None)
@given(body=bodies, data=st.data())
def test_any_length_change_of_a_signed_frame_is_rejected(body: dict, data: st.DataObject) -> None:
    frames = wire.encode(KEY, wire.LPC_REQUEST, 7, 9, 11, 13, body)
    index = data.draw(st.integers(0, 2), label="frame")
    if data.draw(st.booleans(), label="grow"):
        changed = frames[index] + data.draw(st.binary(min_size=1, max_size=8), label="tail")
    else:
        changed = frames[index][: data.draw(st.integers(0, len(frames[index]) - 1), label="cut")]
    with pytest.raises(wire.WireError):
        wire.verify(KEY, [*frames[:index], changed, *frames[index + 1 :]])


def _request_schemas() -> list[tuple[str, dict]]:
    found = [("CONNECT", CONNECT_SCHEMA)]
    for proto in (
        kernel.SYSTEM_SERVICES,
        kernel.ATTACH,
        sm.SM_API_PORT,
        sb.SB_API_PORT,
        csr.API_PORT,
    ):
        found += [(f"{proto.title}/{api.name}", api.request) for api in proto.apis]
        found += [(f"{proto.title}/connect", proto.connect_info)] if proto.connect_info else []
    found += [("csr/hard error", csr.HARD_ERROR_MESSAGE)]
    for info in (csr.BASESRV_CONNECT_INFO, csr.USERSRV_CONNECT_INFO, csr.CONSRV_CONNECT_INFO):
        found.append(("csr/connect info", info))
    return found


SCHEMAS = _request_schemas()
any_keys = st.text(max_size=12) | st.binary(max_size=8) | st.integers(-5, 5)
anything = st.recursive(
    scalars | st.floats(),  # NaN and infinities too
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(any_keys, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validate_raises_only_schema_error(data: st.DataObject) -> None:
    name, schema = data.draw(st.sampled_from(SCHEMAS), label="schema")
    keys = sorted(schema) or ["x"]
    # Mostly the schema's own keys, so that the field checks run, not just the key check.
    shaped = st.dictionaries(st.sampled_from(keys) | any_keys, anything, max_size=len(keys) + 2)
    body = data.draw(shaped | anything, label="body")
    try:
        out = validate(schema, body)
    except SchemaError:
        return
    assert set(out) == set(schema), name
    for value in out.values():
        assert not (isinstance(value, float) and not math.isfinite(value)), name


def _nested_lists(levels: int) -> tuple[Any, Any]:
    field: Any = U32()
    body: Any = 1
    for _ in range(levels):
        field, body = List(item=field), [body]
    return field, body


def test_validate_accepts_nesting_up_to_the_depth_limit() -> None:
    field, body = _nested_lists(MAX_DEPTH)
    assert validate({"x": field}, {"x": body}) == {"x": body}


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1000])
def test_validate_refuses_nesting_deeper_than_the_limit(levels: int) -> None:
    field, body = _nested_lists(levels)
    with pytest.raises(SchemaError, match="nested deeper"):
        validate({"x": field}, {"x": body})
