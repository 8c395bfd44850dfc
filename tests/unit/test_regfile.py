"""nt/regfile.py: the .reg codec (regedit's "Windows Registry Editor Version 5.00" format)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nt.regfile import (
    DeleteKey,
    DeleteValue,
    RegFileError,
    SetKey,
    SetValue,
    decode_data,
    dump_bytes,
    dumps,
    encode_data,
    parse,
)

H = "Windows Registry Editor Version 5.00\n\n"
K = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Test"


def values(text: str) -> dict[str, tuple[int, object]]:
    return {op.name: (op.type, op.data) for op in parse(text) if isinstance(op, SetValue)}


def test_string_value_unescapes_backslash_and_quote() -> None:
    ops = parse(H + f'[{K}]\n"Path"="C:\\\\Windows\\\\"\n"Q"="say \\"hi\\""\n')
    assert ops == [
        SetKey(K),
        SetValue(K, "Path", 1, "C:\\Windows\\"),
        SetValue(K, "Q", 1, 'say "hi"'),
    ]


def test_at_sign_is_the_default_value() -> None:
    assert values(H + f'[{K}]\n@="Service"\n') == {"": (1, "Service")}


def test_dword_is_hex_int() -> None:
    assert values(H + f'[{K}]\n"A"=dword:0000001f\n"B"=dword:FFFFFFFF\n') == {
        "A": (4, 31),
        "B": (4, 0xFFFFFFFF),
    }


def test_hex_is_reg_binary_bytes() -> None:
    assert values(H + f'[{K}]\n"B"=hex:00,01,fe,FF\n"E"=hex:\n') == {
        "B": (3, b"\x00\x01\xfe\xff"),
        "E": (3, b""),
    }


def test_hex0_is_reg_none_bytes() -> None:
    assert values(H + f'[{K}]\n"N"=hex(0):\n"M"=hex(0):01\n') == {"N": (0, b""), "M": (0, b"\x01")}


def test_hex2_is_expand_sz_utf16_with_terminator_stripped() -> None:
    raw = ",".join(f"{b:02x}" for b in "%SystemRoot%\\x\0".encode("utf-16-le"))
    assert values(H + f'[{K}]\n"E"=hex(2):{raw}\n') == {"E": (2, "%SystemRoot%\\x")}


def test_hex7_is_multi_sz_list() -> None:
    raw = ",".join(f"{b:02x}" for b in "\\Windows\0\\RPC Control\0\0".encode("utf-16-le"))
    text = H + f'[{K}]\n"M"=hex(7):{raw}\n"Empty"=hex(7):00,00\n'
    assert values(text) == {"M": (7, ["\\Windows", "\\RPC Control"]), "Empty": (7, [])}


def test_hexb_is_qword_little_endian() -> None:
    assert values(H + f'[{K}]\n"Q"=hex(b):08,07,06,05,04,03,02,01\n') == {
        "Q": (11, 0x0102030405060708)
    }


def test_hex_n_keeps_any_other_type_as_bytes() -> None:
    assert values(H + f'[{K}]\n"L"=hex(6):41,00\n"R"=hex(8):01\n"D"=hex(4):01,00,00,00\n') == {
        "L": (6, b"A\x00"),
        "R": (8, b"\x01"),
        "D": (4, 1),
    }


def test_hex1_is_a_reg_sz_string() -> None:
    assert values(H + f'[{K}]\n"S"=hex(1):61,00,0a,00,62,00,00,00\n') == {"S": (1, "a\nb")}


def test_continuation_lines_join_hex_data() -> None:
    text = H + f'[{K}]\n"B"=hex:01,02,\\\n  03,04,\\\n\t05\n"After"=dword:1\n'
    assert values(text) == {"B": (3, b"\x01\x02\x03\x04\x05"), "After": (4, 1)}


def test_comments_and_blank_lines_are_ignored() -> None:
    text = H + f'; a comment\n\n[{K}]\n  ; indented comment\n\n"A"="1"\n\n'
    assert parse(text) == [SetKey(K), SetValue(K, "A", 1, "1")]


def test_deletions_of_keys_and_values() -> None:
    text = H + f'[-{K}\\Old]\n[{K}]\n"Gone"=-\n@=-\n'
    assert parse(text) == [
        DeleteKey(K + "\\Old"),
        SetKey(K),
        DeleteValue(K, "Gone"),
        DeleteValue(K, ""),
    ]


def test_utf16_le_bom_input_as_regedit_writes_it() -> None:
    text = H.replace("\n", "\r\n") + f'[{K}]\r\n"Name"="Zoë ✓"\r\n'
    assert values(b"\xff\xfe" + text.encode("utf-16-le")) == {"Name": (1, "Zoë ✓")}


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf"])
def test_utf8_with_and_without_bom(prefix: bytes) -> None:
    assert values(prefix + (H + f'[{K}]\n"N"="é"\n').encode()) == {"N": (1, "é")}


def test_regedit4_header_and_ansi_strings() -> None:
    text = b'REGEDIT4\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\T]\r\n"E"=hex(2):25,41,25,e9,00\r\n'
    assert parse(text) == [
        SetKey("HKEY_LOCAL_MACHINE\\SOFTWARE\\T"),
        SetValue("HKEY_LOCAL_MACHINE\\SOFTWARE\\T", "E", 2, "%A%é"),
    ]


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("HKLM\\SYSTEM\\X", "HKEY_LOCAL_MACHINE\\SYSTEM\\X"),
        ("hkey_local_machine\\SYSTEM\\X", "HKEY_LOCAL_MACHINE\\SYSTEM\\X"),
        ("HKU\\.DEFAULT\\X", "HKEY_USERS\\.DEFAULT\\X"),
        ("HKEY_CURRENT_USER\\X", "HKEY_USERS\\.DEFAULT\\X"),
        ("HKCR\\.txt", "HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\.txt"),
        ("HKEY_CLASSES_ROOT\\.txt", "HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\.txt"),
    ],
)
def test_root_names_are_canonicalised(root: str, expected: str) -> None:
    assert parse(H + f"[{root}]\n") == [SetKey(expected)]


MALFORMED = [
    ("[HKLM\\SOFTWARE\\T]\n", 1, "missing header"),
    ("\n\nREGEDIT5\n", 3, "missing header"),
    (H + '"A"="x"\n', 3, "value outside a key"),
    (H + "[HKLM\\SOFTWARE\\T\n", 3, "must end with ']'"),
    (H + "[HKEY_NOWHERE\\X]\n", 3, "unknown root key"),
    (H + "[HKLM\\SOFTWARE\\\\T]\n", 3, "empty key name"),
    (H + "[]\n", 3, "empty key name"),
    (H + '[HKLM\\SOFTWARE\\T]\n\n"A"=dword:123456789\n', 5, "1 to 8 hex digits"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"=hex:01,zz\n', 4, "'zz' is not a hex byte"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"=hex:01,\\\n  02,,03\n', 5, "empty byte"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"=hex:01,\\\n  02,\\\n  0x\n', 6, "'0x' is not a hex byte"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"=hex:01,\\', 4, "ends after a '\\' continuation"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"="open\n', 4, "no closing quote"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"="a\\qb"\n', 4, "unknown escape"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"="x" junk\n', 4, "after the closing quote"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A" "x"\n', 4, "expected '='"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"=qword:1\n', 4, "unknown data"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A"="a" "b"\n', 4, "after the closing quote"),
    (H + '[HKLM\\SOFTWARE\\T]\n"A=1\n', 4, "value name has no closing quote"),
    (H + '[-HKLM\\SOFTWARE\\T]\n"A"="x"\n', 4, "deleted key"),
    (H + "[HKLM\\SOFTWARE\\T]\nwhat is this\n", 4, "unexpected text"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), MALFORMED)
def test_malformed_input_names_the_line_and_the_fix(text: str, line: int, fragment: str) -> None:
    with pytest.raises(RegFileError) as info:
        parse(text)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)
    assert fragment in str(info.value)


def test_invalid_utf8_reports_its_line() -> None:
    data = (H + "[HKLM\\SOFTWARE\\T]\n").encode() + b'"A"="\xff"\n'
    with pytest.raises(RegFileError) as info:
        parse(data)
    assert info.value.line == 4


def test_dumps_writes_regedit_layout_with_crlf() -> None:
    ops = [
        SetKey(K),
        SetValue(K, "", 1, "d"),
        SetValue(K, "S", 1, 'a"\\'),
        SetValue(K, "D", 4, 31),
        DeleteValue(K, "Old"),
        DeleteKey(K + "\\Gone"),
    ]
    assert dumps(ops) == (
        "Windows Registry Editor Version 5.00\r\n\r\n"
        f"[{K}]\r\n"
        '@="d"\r\n'
        '"S"="a\\"\\\\"\r\n'
        '"D"=dword:0000001f\r\n'
        '"Old"=-\r\n'
        "\r\n"
        f"[-{K}\\Gone]\r\n"
        "\r\n"
    )


def test_dumps_wraps_long_hex_under_80_columns_and_reads_back() -> None:
    ops = [SetKey(K), SetValue(K, "Blob", 3, bytes(range(256)))]
    text = dumps(ops)
    assert all(len(line) < 80 for line in text.split("\r\n"))
    assert text.count("\\\r\n  ") > 5
    assert parse(text) == ops


def test_dump_bytes_is_utf16_le_with_bom_and_round_trips() -> None:
    ops = [SetKey(K), SetValue(K, "Name", 1, "ünïcode ✓")]
    data = dump_bytes(ops)
    assert data.startswith(b"\xff\xfeW\x00i\x00")
    assert parse(data) == ops


def test_string_with_line_break_is_written_as_hex1() -> None:
    ops = [SetKey(K), SetValue(K, "S", 1, "two\r\nlines")]
    assert '"S"=hex(1):' in dumps(ops)
    assert parse(dumps(ops)) == ops


def test_dumps_refuses_a_value_name_with_a_line_break() -> None:
    with pytest.raises(ValueError, match="line break"):
        dumps([SetKey(K), SetValue(K, "a\nb", 1, "x")])


def test_encode_decode_data_are_inverse_for_each_type() -> None:
    cases = [(1, "x"), (2, "%A%"), (7, ["a", "b"]), (7, []), (4, 7), (11, 2**40), (3, b"\x00")]
    for type_, data in cases:
        assert decode_data(type_, encode_data(type_, data)) == data
    assert encode_data(1, "A") == b"A\x00\x00\x00"
    assert encode_data(7, []) == b"\x00\x00"


# --- property: dumps -> parse is the identity ---------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=20
)
_name = _text.filter(lambda s: "\r" not in s and "\n" not in s)
_component = _name.filter(lambda s: s != "" and "\\" not in s)
_value = st.one_of(
    st.tuples(st.sampled_from([1, 2]), _text),
    st.tuples(st.just(7), st.lists(_text.filter(bool), max_size=4)),
    st.tuples(st.just(4), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(11), st.integers(0, 2**64 - 1)),
    st.tuples(st.sampled_from([0, 3, 5, 6, 8, 0x20, 0xFFFF0001]), st.binary(max_size=100)),
)


@st.composite
def _ops(draw: st.DrawFn) -> list:
    ops: list = []
    for _ in range(draw(st.integers(0, 5))):
        path = "\\".join(
            ["HKEY_LOCAL_MACHINE", "SOFTWARE", *draw(st.lists(_component, min_size=1, max_size=3))]
        )
        if draw(st.booleans()):
            ops.append(DeleteKey(path))
            continue
        ops.append(SetKey(path))
        for _ in range(draw(st.integers(0, 4))):
            name = draw(_name)
            if draw(st.integers(0, 5)) == 0:
                ops.append(DeleteValue(path, name))
            else:
                type_, data = draw(_value)
                ops.append(SetValue(path, name, type_, data))
    return ops


@settings(max_examples=300, deadline=None)
@given(_ops())
def test_property_dumps_then_parse_round_trips(ops: list) -> None:
    assert parse(dumps(ops)) == ops
    assert parse(dump_bytes(ops)) == ops


REAL_EXPORT = (
    "Windows Registry Editor Version 5.00\r\n\r\n"
    "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Tcpip]\r\n"
    '"DisplayName"="@%SystemRoot%\\\\system32\\\\tcpipcfg.dll,-50003"\r\n'
    '"FailureActions"=hex:80,51,01,00,00,00,00,00,00,00,00,00,03,00,00,00,14,00,00,\\\r\n'
    "  00,01,00,00,00,60,ea,00,00,01,00,00,00,60,ea,00,00,00,00,00,00,00,00,00,00\r\n"
    '"Prop"=hex(ffff0012):01,02\r\n'
    '"Note"="two\r\nlines"\r\n'
)


def test_a_file_cut_anywhere_parses_or_names_a_line() -> None:
    """A truncated file is either a valid shorter file or a RegFileError with a line."""
    data = b"\xff\xfe" + REAL_EXPORT.encode("utf-16-le")
    for cut in range(2, len(data)):
        try:
            parse(data[:cut])
        except RegFileError as exc:
            assert exc.line >= 1 and f"line {exc.line}" in str(exc)


def test_a_real_export_keeps_raw_line_breaks_and_device_properties() -> None:
    ops = parse(REAL_EXPORT)
    values = {op.name: op for op in ops if isinstance(op, SetValue)}
    assert values["Note"].data == "two\r\nlines"
    assert values["Prop"].type == 0xFFFF0012 and values["Prop"].raw == b"\x01\x02"
    assert len(values["FailureActions"].raw) == 44
    wrapped = REAL_EXPORT[REAL_EXPORT.index('"FailureActions"') : REAL_EXPORT.index('"Prop"')]
    assert wrapped in dumps(ops)  # regedit's own wrapping, byte for byte


@settings(max_examples=300, deadline=None)
@given(
    type_=st.one_of(st.integers(0, 11), st.integers(0, 0xFFFFFFFF)),
    raw=st.binary(max_size=200),
    name=st.text(max_size=20).filter(lambda n: "\r" not in n and "\n" not in n and "\0" not in n),
)
def test_property_any_value_bytes_survive_dumps_then_parse(
    type_: int, raw: bytes, name: str
) -> None:
    """Whatever a hive holds (any type, any bytes), an export gives back exactly that."""
    from nt.regfile import decode_lenient

    key = r"HKEY_LOCAL_MACHINE\SOFTWARE\P"
    op = SetValue(key, name, type_, decode_lenient(type_, raw), raw=raw)
    (back,) = [o for o in parse(dumps([SetKey(key), op])) if isinstance(o, SetValue)]
    assert (back.name, back.type, back.stored()) == (name, type_, raw)
