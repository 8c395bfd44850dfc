"""Frames on the wire: header, body, MAC. Pure bytes in, bytes out.

A message is three ZeroMQ frames ``[header, body, mac]``:

- ``header``: 28 bytes, little endian: version u8, LPC message type u8, flags u16,
  connection id u32, sequence u64, message id u64, code u32 (the API number of a
  request, the NTSTATUS of a reply).
- ``body``: a msgpack map.
- ``mac``: HMAC-SHA256 over ``header || body`` with the per-boot key.

The MAC is checked before anything is unpacked (jupyter_client's rule): a frame from a
process that does not hold this boot's key never reaches the msgpack parser.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any, NamedTuple

import msgpack

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBHIQQI")
MAC_SIZE = 32

# LPC message types (sdk/include/ndk/lpctypes.h).
LPC_REQUEST = 1
LPC_REPLY = 2
LPC_DATAGRAM = 3
LPC_PORT_CLOSED = 5
LPC_CLIENT_DIED = 6
LPC_ERROR_EVENT = 9  # a hard error the kernel sends to the default hard-error port
LPC_CONNECTION_REQUEST = 10
MESSAGE_TYPES = {
    LPC_REQUEST: "LPC_REQUEST",
    LPC_REPLY: "LPC_REPLY",
    LPC_DATAGRAM: "LPC_DATAGRAM",
    LPC_PORT_CLOSED: "LPC_PORT_CLOSED",
    LPC_CLIENT_DIED: "LPC_CLIENT_DIED",
    LPC_ERROR_EVENT: "LPC_ERROR_EVENT",
    LPC_CONNECTION_REQUEST: "LPC_CONNECTION_REQUEST",
}

# Unpacking limits shared by every port; the per-port message length bounds the rest.
MAX_ARRAY = 4096
MAX_MAP = 1024


class WireError(ValueError):
    """A frame that cannot be accepted. ``reason`` is a short tag for logs."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Header(NamedTuple):
    version: int
    type: int
    flags: int
    conn: int
    seq: int
    msg_id: int
    code: int


def mac(key: bytes, header: bytes, body: bytes) -> bytes:
    return hmac.digest(key, header + body, hashlib.sha256)


def pack_body(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def encode(
    key: bytes,
    mtype: int,
    conn: int,
    seq: int,
    msg_id: int,
    code: int,
    body: Any,
    flags: int = 0,
) -> list[bytes]:
    """Build the three signed frames of one message."""
    header = HEADER.pack(PROTOCOL_VERSION, mtype, flags, conn, seq, msg_id, code & 0xFFFFFFFF)
    payload = body if isinstance(body, bytes) else pack_body(body)
    return [header, payload, mac(key, header, payload)]


def verify(key: bytes, frames: list[bytes]) -> tuple[Header, bytes]:
    """Check shape and MAC; return the parsed header and the still-packed body."""
    if len(frames) != 3:
        raise WireError("bad_frame", f"{len(frames)} frames")
    header, body, tag = frames
    if len(header) != HEADER.size or len(tag) != MAC_SIZE:
        raise WireError("bad_frame", "header or mac size")
    if not hmac.compare_digest(mac(key, header, body), tag):
        raise WireError("bad_mac")
    parsed = Header._make(HEADER.unpack(header))
    if parsed.version != PROTOCOL_VERSION:
        raise WireError("bad_version", str(parsed.version))
    return parsed, body


def unpack_body(body: bytes, max_length: int) -> Any:
    """Unpack a verified body with explicit limits: no ext types, bounded sizes."""
    if len(body) > max_length:
        raise WireError("too_long", f"{len(body)} > {max_length}")
    try:
        return msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_ext_len=0,
            max_str_len=max_length,
            max_bin_len=max_length,
            max_array_len=MAX_ARRAY,
            max_map_len=MAX_MAP,
        )
    except Exception as exc:  # every msgpack failure mode is a bad message
        raise WireError("bad_message", type(exc).__name__) from exc
