"""Unit tests of the term codec: every tag both ways against bytes from OTP 25, and the errors.

Expected bytes were printed by ``term_to_binary(T, [{minor_version, 2}])`` on OTP 25.2.3 (the old
tags by ``term_to_binary(binary_to_term(OldBytes), ...)``) and pasted here as literals.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from py_nodes.erldist import etf
from py_nodes.erldist.errors import DecodeError, EncodeError
from py_nodes.erldist.etf import decode, decode_prefix, encode, make_export
from py_nodes.erldist.terms import (
    Atom,
    BitString,
    Export,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
)

X = Atom("x@127.0.0.1")
X_ATOM = b"w\x0bx@127.0.0.1"

# fun(X) -> X end and fun() -> Y end (Y = ok), compiled in module funmod, on nonode@nohost.
FUN = (
    b"\x83p\x00\x00\x00H\x01\xe29\xdbr\xc9S\xee=s\xb6>/i\xad\xb3\xbe\x00\x00\x00\x00\x00\x00"
    b"\x00\x00w\x06funmoda\x00b\x07\x11\xce\xdbXw\rnonode@nohost\x00\x00\x00\t\x00\x00\x00\x00"
    b"\x00\x00\x00\x00"
)
CLOSURE = (
    b"\x83p\x00\x00\x00L\x00\xe29\xdbr\xc9S\xee=s\xb6>/i\xad\xb3\xbe\x00\x00\x00\x01\x00\x00"
    b"\x00\x01w\x06funmoda\x01b\x07\x11\xce\xdbXw\rnonode@nohost\x00\x00\x00\t\x00\x00\x00\x00"
    b"\x00\x00\x00\x00w\x02ok"
)

# (Python term, OTP's bytes): encode(term) == bytes and decode(bytes) is exactly term.
CASES: list[tuple[Any, bytes]] = [
    (0, b"\x83a\x00"),
    (255, b"\x83a\xff"),
    (256, b"\x83b\x00\x00\x01\x00"),
    (-1, b"\x83b\xff\xff\xff\xff"),
    (2147483647, b"\x83b\x7f\xff\xff\xff"),
    (-2147483648, b"\x83b\x80\x00\x00\x00"),
    (2147483648, b"\x83n\x04\x00\x00\x00\x00\x80"),
    (-2147483649, b"\x83n\x04\x01\x01\x00\x00\x80"),
    (2**64, b"\x83n\t\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
    (-(2**64), b"\x83n\t\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
    (2**2040, b"\x83o\x00\x00\x01\x00\x00" + bytes(255) + b"\x01"),
    (-(2**2040), b"\x83o\x00\x00\x01\x00\x01" + bytes(255) + b"\x01"),
    (1.5, b"\x83F?\xf8\x00\x00\x00\x00\x00\x00"),
    (-0.0, b"\x83F\x80\x00\x00\x00\x00\x00\x00\x00"),
    (1e300, b"\x83F~7\xe4<\x88\x00u\x9c"),
    (5e-324, b"\x83F\x00\x00\x00\x00\x00\x00\x00\x01"),
    (Atom("abc"), b"\x83w\x03abc"),
    (Atom(""), b"\x83w\x00"),
    (Atom("é"), b"\x83w\x02\xc3\xa9"),
    (Atom("😀"), b"\x83w\x04\xf0\x9f\x98\x80"),
    (Atom("a" * 255), b"\x83w\xff" + b"a" * 255),
    (Atom("é" * 86), b"\x83w\xac" + "é".encode() * 86),
    (Atom("😀" * 64), b"\x83v\x01\x00" + "😀".encode() * 64),
    (True, b"\x83w\x04true"),
    (False, b"\x83w\x05false"),
    (None, b"\x83w\tundefined"),
    (b"", b"\x83m\x00\x00\x00\x00"),
    (b"\x01\x02\x03", b"\x83m\x00\x00\x00\x03\x01\x02\x03"),
    (BitString(b"\x80", 1), b"\x83M\x00\x00\x00\x01\x01\x80"),
    (BitString(b"\xff\xe0", 3), b"\x83M\x00\x00\x00\x02\x03\xff\xe0"),
    ((), b"\x83h\x00"),
    ((1, 2), b"\x83h\x02a\x01a\x02"),
    ((Atom("a"), (Atom("b"),)), b"\x83h\x02w\x01ah\x01w\x01b"),
    (
        tuple(range(1, 257)),
        b"\x83i\x00\x00\x01\x00"
        + bytes(b for i in range(1, 256) for b in (97, i))
        + b"b\x00\x00\x01\x00",
    ),
    ([], b"\x83j"),
    ([1, 2, 3], b"\x83k\x00\x03\x01\x02\x03"),
    ([7] * 65535, b"\x83k\xff\xff" + b"\x07" * 65535),
    ([7] * 65536, b"\x83l\x00\x01\x00\x00" + b"a\x07" * 65536 + b"j"),
    ([1, 256], b"\x83l\x00\x00\x00\x02a\x01b\x00\x00\x01\x00j"),
    (ImproperList([Atom("a")], Atom("b")), b"\x83l\x00\x00\x00\x01w\x01aw\x01b"),
    (ImproperList([1, 2], 3), b"\x83l\x00\x00\x00\x02a\x01a\x02a\x03"),
    ([True], b"\x83l\x00\x00\x00\x01w\x04truej"),
    ([[]], b"\x83l\x00\x00\x00\x01jj"),
    ({}, b"\x83t\x00\x00\x00\x00"),
    ({Atom("a"): 1}, b"\x83t\x00\x00\x00\x01w\x01aa\x01"),
    ({1: 2}, b"\x83t\x00\x00\x00\x01a\x01a\x02"),
    ({b"k": [1]}, b"\x83t\x00\x00\x00\x01m\x00\x00\x00\x01kk\x00\x01\x01"),
    (Pid(X, 1, 2, 3), b"\x83X" + X_ATOM + b"\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"),
    (
        Reference(X, 9, (1, 2, 3)),
        b"\x83Z\x00\x03"
        + X_ATOM
        + b"\x00\x00\x00\t\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03",
    ),
    (Port(X, 5, 6), b"\x83Y" + X_ATOM + b"\x00\x00\x00\x05\x00\x00\x00\x06"),
    (Port(X, 2**32, 6), b"\x83x" + X_ATOM + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x06"),
    # OTP 25 switches to V4_PORT_EXT above 28-bit ids, not 32-bit ones.
    (Port(X, 2**28 - 1, 6), b"\x83Y" + X_ATOM + b"\x0f\xff\xff\xff\x00\x00\x00\x06"),
    (Port(X, 2**28, 6), b"\x83x" + X_ATOM + b"\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x06"),
    (Fun(FUN[2:]), FUN),
    (Fun(CLOSURE[2:]), CLOSURE),
    (
        Export(Atom("lists"), Atom("map"), 2, b"w\x05listsw\x03mapa\x02"),
        b"\x83qw\x05listsw\x03mapa\x02",
    ),
]


def same(a: Any, b: Any) -> bool:
    """Strict equality: same types all the way down (1 != 1.0 != True), -0.0 != 0.0."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack(">d", a) == struct.pack(">d", b)
    if type(a) in (tuple, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(
            same(x, y) for x, y in zip(a.items(), b.items(), strict=True)
        )
    if type(a) is ImproperList:
        return same(a.items, b.items) and same(a.tail, b.tail)
    if type(a) is Export:
        return a == b and (a.module, a.function, a.arity) == (b.module, b.function, b.arity)
    return bool(a == b)


@pytest.mark.parametrize(("term", "expected"), CASES, ids=lambda v: repr(v)[:40])
def test_encode_matches_otp(term: Any, expected: bytes) -> None:
    assert encode(term) == expected


@pytest.mark.parametrize(("term", "expected"), CASES, ids=lambda v: repr(v)[:40])
def test_decode_otp_bytes(term: Any, expected: bytes) -> None:
    assert same(decode(expected), term)


def test_decoded_types() -> None:
    assert type(decode(b"\x83w\x03abc")) is Atom
    assert decode(b"\x83w\x04true") is True
    assert decode(b"\x83w\tundefined") is None
    export = decode(b"\x83qw\x05listsw\x03mapa\x02")
    assert (export.module, export.function, export.arity) == ("lists", "map", 2)
    assert type(export.module) is Atom


def test_encode_python_only_types() -> None:
    assert encode("héllo") == b"\x83m\x00\x00\x00\x06h\xc3\xa9llo"
    assert encode(bytearray(b"ab")) == encode(b"ab") == encode(memoryview(b"ab"))
    assert encode(BitString(b"\xff", 8)) == encode(b"\xff")  # 8 bits is a binary to OTP
    assert encode(BitString(b"\xff", 1)) == b"\x83M\x00\x00\x00\x01\x01\x80"  # unused bits cleared
    # A nested ImproperList tail is flattened, as OTP would encode [1 | [2 | 3]].
    assert encode(ImproperList([1], ImproperList([2], 3))) == encode(ImproperList([1, 2], 3))
    assert encode([True, 1]) == b"\x83l\x00\x00\x00\x02w\x04truea\x01j"  # bools are not chars


def test_encode_subclasses() -> None:
    import enum
    from collections import OrderedDict, namedtuple

    class Color(enum.IntEnum):
        RED = 1

    point = namedtuple("point", "x y")
    assert encode(Color.RED) == encode(1)
    assert encode(point(1, 2)) == encode((1, 2))
    assert encode(OrderedDict([(1, 2)])) == encode({1: 2})


def test_make_export() -> None:
    export = make_export("lists", "map", 2)
    assert encode(export) == b"\x83qw\x05listsw\x03mapa\x02"
    assert export == decode(encode(export))
    with pytest.raises(EncodeError, match="arity"):
        make_export("m", "f", 256)


# Old and alternative tags that OTP still accepts: (bytes, term OTP decodes them to).
OLD_FORMS: list[tuple[bytes, Any]] = [
    (b"\x83c1.50000000000000000000e+00\x00\x00\x00\x00\x00", 1.5),  # FLOAT_EXT
    (b"\x83c-1.5e3" + bytes(25), -1500.0),
    (b"\x83d\x00\x01\xe9", Atom("é")),  # ATOM_EXT is latin-1
    (b"\x83s\x02h\xe9", Atom("hé")),  # SMALL_ATOM_EXT
    (b"\x83d\x00\x04true", True),
    (b"\x83v\x00\x01a", Atom("a")),  # ATOM_UTF8_EXT with a short name
    (b"\x83g" + b"d\x00\x0bx@127.0.0.1" + b"\x00\x00\x00\x01\x00\x00\x00\x02\x03", Pid(X, 1, 2, 3)),
    (
        b"\x83r\x00\x02d\x00\x0bx@127.0.0.1\x02\x00\x00\x00\x01\x00\x00\x00\x02",
        Reference(X, 2, (1, 2)),
    ),
    (b"\x83es\x0bx@127.0.0.1\x00\x00\x00\x07\x01", Reference(X, 1, (7,))),
    (b"\x83fd\x00\x0bx@127.0.0.1\x00\x00\x00\x05\x02", Port(X, 5, 2)),
    (b"\x83n\x01\x02\x05", -5),  # any non-zero sign byte is negative
    (b"\x83n\x00\x00", 0),
    (b"\x83o\x00\x00\x00\x00\x00", 0),
    (b"\x83M\x00\x00\x00\x00\x00", b""),  # empty bitstring is a binary
    (b"\x83M\x00\x00\x00\x01\x08\xff", b"\xff"),  # 8 bits: a binary
    (b"\x83M\x00\x00\x00\x01\x01\xff", BitString(b"\x80", 1)),  # unused bits cleared
    (b"\x83l\x00\x00\x00\x01a\x01k\x00\x01\x02", [1, 2]),  # [1 | "\2"] is [1, 2]
    (b"\x83l\x00\x00\x00\x01a\x01l\x00\x00\x00\x01a\x02a\x03", ImproperList([1, 2], 3)),
    (b"\x83l\x00\x00\x00\x00a\x01", 1),  # [ | 1] is 1
    (b"\x83qw\x01mw\x01fb\x00\x00\x00\x01", Export(Atom("m"), Atom("f"), 1, b"")),
    (b"\x83P\x00\x00\x00\x02" + zlib.compress(b"a\x07"), 7),
]


@pytest.mark.parametrize(("data", "term"), OLD_FORMS, ids=lambda v: repr(v)[:40])
def test_decode_old_forms(data: bytes, term: Any) -> None:
    decoded = decode(data)
    if type(term) is Export:
        assert (decoded.module, decoded.function, decoded.arity) == (term.module, term.function, 1)
    else:
        assert same(decoded, term)


def test_decode_otp_compressed() -> None:
    # term_to_binary(lists:duplicate(50, {a}), [compressed, {minor_version, 2}])
    data = b"\x83P\x00\x00\x01\x00x\x9c\xcba``0\xca`,gL\x1c\x91D\x16\x00\xb6\xd9?\xed"
    assert decode(data) == [(Atom("a"),)] * 50


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode(bytearray(b"\x83a\x05")) == 5
    assert decode(memoryview(b"\x83w\x03abc")) == Atom("abc")


def test_decode_prefix_frame() -> None:
    control = encode((2, Atom(""), Pid(X, 1, 2, 3)))
    payload = encode((Atom("seq"), 7, b"x" * 64))
    frame = b"p" + control + payload + b"junk"
    end = len(frame) - 4
    term, pos = decode_prefix(frame, 1, end)
    assert term == (2, Atom(""), Pid(X, 1, 2, 3))
    assert pos == 1 + len(control)
    term, pos = decode_prefix(frame, pos, end)
    assert term == (Atom("seq"), 7, b"x" * 64) and pos == end
    # `end` is a hard limit: a term crossing it is truncated, even if the bytes exist.
    with pytest.raises(DecodeError, match="remain"):
        decode_prefix(frame, 1 + len(control), end - 1)


def test_a_pid_keeps_its_encoding_and_a_bad_one_fails_every_time() -> None:
    pid = Pid(X, 1, 2, 3)
    first = encode(pid)
    assert pid.encoded is not None and encode(pid) == first == encode(Pid(X, 1, 2, 3))
    assert encode([pid, pid]) == b"\x83l\x00\x00\x00\x02" + 2 * first[1:] + b"j"
    bad = Pid(X, 2**32, 0, 0)
    for _ in range(2):
        with pytest.raises(EncodeError, match="32-bit"):
            encode(bad)
    assert bad.encoded is None


def test_cached_pids_and_atoms_are_exact() -> None:
    one = encode(Pid(X, 1, 2, 3))
    other = encode(Pid(Atom("y@127.0.0.1"), 1, 2, 3))
    assert decode(one) == Pid(X, 1, 2, 3)
    assert decode(other).node == "y@127.0.0.1"
    assert decode(one) is decode(one)  # served from the cache
    # The same bytes as latin-1 and UTF-8 are different atoms.
    assert decode(b"\x83w\x02\xc3\xa9") == "é"
    assert decode(b"\x83s\x02\xc3\xa9") == "Ã©"
    assert decode(b"\x83w\x02\xc3\xa9") == "é"


# --- decode errors -------------------------------------------------------------------------


def error(data: bytes, **kwargs: Any) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(data, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("data", "offset", "words"),
    [
        (b"", 0, "version byte"),
        (b"\x84a\x01", 0, "version byte is 132"),
        (b"\x83", 1, "data ends"),
        (b"\x83a", 1, "needs 2 bytes"),
        (b"\x83b\x00\x00", 1, "needs 5 bytes but only 3 remain"),
        (b"\x83m\x00\x00\x00\x05ab", 1, "binary length 5 exceeds the 2 bytes remaining"),
        (b"\x83m\xff\xff\xff\xff" + bytes(12), 1, "binary length 4294967295 exceeds the 12 bytes"),
        (b"\x83h\x03a\x01", 1, "tuple arity 3 exceeds"),
        (b"\x83i\xff\xff\xff\xff", 1, "tuple arity 4294967295 exceeds"),
        (b"\x83h\x02a\x01", 5, "data ends"),
        (b"\x83l\xff\xff\xff\xffa\x01", 1, "list length 4294967295"),
        (b"\x83l\x00\x00\x00\x01a\x01", 8, "data ends"),  # tail missing
        (b"\x83t\x00\x00\x00\x02a\x01a", 1, "map arity 2 exceeds the 3 bytes"),
        (b"\x83k\x00\x05ab", 1, "string length 5"),
        (b"\x83n\xffa", 1, "big integer length 255"),
        (b"\x83o\xff\xff\xff\xff\x00", 1, "big integer length 4294967295"),
        (b"\x83w\x05ab", 1, "atom length 5"),
        (b"\x83v\x01\x00ab", 1, "atom length 256"),
        (b"\x83w\x02\xc3(", 1, "not valid UTF-8"),
        (b"\x83v\x01\x00" + b"a" * 256, 1, "256 characters"),
        (b"\x83Xa\x01", 2, "pid node must be an atom, found tag 97"),
        (b"\x83X" + X_ATOM + b"\x00\x00\x00\x01", 15, "needs 12 bytes but only 4 remain"),
        (b"\x83Z\x00\x00" + X_ATOM, 1, "0 id words"),
        (b"\x83Z\x00\x06" + X_ATOM, 1, "6 id words"),
        (b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00", 1, "nan"),
        (b"\x83F\x7f\xf0\x00\x00\x00\x00\x00\x00", 1, "inf"),
        (b"\x83c  1.5" + bytes(26), 1, "is not a float"),
        (b"\x83c1e5" + bytes(28), 1, "is not a float"),
        (b"\x83M\x00\x00\x00\x01\x00\xff", 1, "0 bits"),
        (b"\x83M\x00\x00\x00\x01\x09\xff", 1, "9 bits"),
        (b"\x83M\x00\x00\x00\x00\x03", 1, "empty bitstring"),
        (b"\x83p\x00\x00\x00\x04", 1, "below the minimum"),
        (b"\x83p\x00\x00\x01\x00" + bytes(40), 1, "NEW_FUN_EXT size 256 exceeds"),
        (b"\x83qw\x01mw\x01fw\x01a", 8, "export arity must be a small integer"),
        (b"\x83u\x00\x00\x00\x00", 1, "FUN_EXT (pre-R16) not supported"),
        (b"\x83y\x00\x00\x00\x00", 1, "LOCAL_EXT is node-local and cannot be decoded here"),
        (b"\x83D\x00", 1, "DIST_HEADER"),
        (b"\x83R\x00", 1, "ATOM_CACHE_REF"),
        (b"\x83\x00", 1, "unknown tag 0"),
        (b"\x83h\x01\xff", 3, "unknown tag 255"),
        (b"\x83a\x01\x00", 3, "1 trailing bytes"),
        (b"\x83a\x01\x83a\x01", 3, "3 trailing bytes"),
        (b"\x83h\x01P\x00\x00\x00\x01\x00", 3, "COMPRESSED (only allowed right after"),
    ],
)
def test_decode_errors(data: bytes, offset: int, words: str) -> None:
    err = error(data)
    assert err.offset == offset, err
    assert words in str(err)
    assert str(err).startswith(f"offset {offset}: ")


def test_unhashable_map_keys() -> None:
    err = error(b"\x83t\x00\x00\x00\x01k\x00\x01\x01a\x01")
    assert err.offset == 6
    assert "map key at offset 6 is a list, which Python cannot hash" in str(err)
    err = error(b"\x83t\x00\x00\x00\x01t\x00\x00\x00\x00a\x01")
    assert "map key at offset 6 is a map, which Python cannot hash" in str(err)
    err = error(b"\x83t\x00\x00\x00\x01h\x01ja\x01")
    assert "is a tuple containing a list or map" in str(err)
    err = error(b"\x83t\x00\x00\x00\x01l\x00\x00\x00\x01a\x01a\x02a\x01")
    assert "is an improper list" in str(err)


def test_map_keys_that_collide_in_python() -> None:
    # #{1 => a, 1.0 => b} is a valid Erlang map; Python cannot hold both keys.
    err = error(b"\x83t\x00\x00\x00\x02a\x01w\x01aF?\xf0\x00\x00\x00\x00\x00\x00w\x01b")
    assert err.offset == 11 and "equals an earlier key" in str(err)
    err = error(b"\x83t\x00\x00\x00\x02a\x01a\x01w\x04truea\x02")
    assert err.offset == 10


def test_max_depth() -> None:
    nested = b"\x83" + b"h\x01" * 10 + b"a\x00"
    assert decode(nested, max_depth=10) == ((((((((((0,),),),),),),),),),)
    err = error(nested, max_depth=9)
    assert err.offset == 19 and "nested deeper than max_depth" in str(err)
    deep_list = b"\x83" + b"l\x00\x00\x00\x01" * 300 + b"j" * 301
    assert "nested deeper than max_depth" in str(error(deep_list))
    deep_map = b"\x83" + b"t\x00\x00\x00\x01a\x01" * 300 + b"a\x00"
    assert "nested deeper than max_depth" in str(error(deep_map))
    # A limit above Python's recursion limit still ends in DecodeError.
    very_deep = b"\x83" + b"h\x01" * 100_000 + b"a\x00"
    assert "nested deeper" in str(error(very_deep, max_depth=1_000_000))


def test_compressed_errors() -> None:
    body = b"a\x07"
    good = zlib.compress(body)
    assert "uncompressed size of 0" in str(error(b"\x83P\x00\x00\x00\x00" + good))
    big = struct.pack(">I", etf.MAX_UNCOMPRESSED + 1)
    assert "over the limit" in str(error(b"\x83P" + big + good))
    assert "not the claimed 3" in str(error(b"\x83P\x00\x00\x00\x03" + good))
    assert "longer than the claimed 1" in str(error(b"\x83P\x00\x00\x00\x01" + good))
    assert "truncated" in str(error(b"\x83P\x00\x00\x00\x02" + good[:-3]))
    assert "bad zlib data" in str(error(b"\x83P\x00\x00\x00\x02" + b"\x00" * 10))
    assert "trailing" in str(error(b"\x83P\x00\x00\x00\x02" + good + b"\x00"))
    err = error(b"\x83P\x00\x00\x00\x03" + zlib.compress(b"a\x07\x00"))
    assert "1 bytes after its term" in str(err)
    err = error(b"\x83P\x00\x00\x00\x03" + zlib.compress(b"h\x01\xff"))
    assert err.offset == 1 and "in the decompressed term, offset 2" in str(err)


def test_compressed_bomb_is_bounded() -> None:
    bomb = zlib.compress(bytes(50_000_000), 9)  # ~50 KB of zlib that inflates to 50 MB
    err = error(b"\x83P\x00\x00\x10\x00" + bomb)
    assert "longer than the claimed 4096" in str(err)


def test_decode_prefix_bounds() -> None:
    data = b"\x83a\x01"
    assert decode_prefix(data, 0, 99) == (1, 3)  # end is clamped to len(data)
    with pytest.raises(DecodeError):
        decode_prefix(data, 3, 3)
    with pytest.raises(DecodeError):
        decode_prefix(data, -1, 3)
    assert decode_prefix(bytearray(data), 0, 3) == (1, 3)  # type: ignore[arg-type]


# --- encode errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "words"),
    [
        ({1, 2}, "cannot encode set value {1, 2} (at top level)"),
        (object(), "cannot encode object"),
        (float("nan"), "float nan has no Erlang equivalent"),
        ([1, (2, float("inf"))], "float inf has no Erlang equivalent (at term[1][1])"),
        ({Atom("k"): [1, {3}]}, "cannot encode set value {3} (at term[Atom('k')][1])"),
        ({frozenset(): 1}, "(at term key frozenset())"),
        (ImproperList([1], {2}), "(at term.tail)"),
        (Atom("a" * 256), "atom has 256 characters"),
        ("\ud800", "lone surrogate"),
        (Pid(X, 2**32, 0, 0), "pid needs an atom node and 32-bit id"),
        (Pid(1, 0, 0, 0), "pid needs an atom node"),  # type: ignore[arg-type]
        (Reference(X, 0, ()), "reference has 0 id words"),
        (Reference(X, 0, (1, 2, 3, 4, 5, 6)), "reference has 6 id words"),
        (Reference(X, 0, (2**32,)), "32-bit creation and ids"),
        (Port(X, 2**64, 0), "64-bit id"),
        (Port(X, -1, 0), "64-bit id"),
    ],
)
def test_encode_errors(term: Any, words: str) -> None:
    with pytest.raises(EncodeError) as info:
        encode(term)
    assert words in str(info.value)


def test_encode_too_deep() -> None:
    term: Any = []
    for _ in range(100_000):
        term = [term]
    with pytest.raises(EncodeError, match="nested deeper"):
        encode(term)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="contains itself"):
        encode(loop)


def test_tag_constants() -> None:
    assert (etf.SMALL_TUPLE_EXT, etf.NEW_PID_EXT, etf.LOCAL_EXT) == (104, 88, 121)
    assert etf.COMPRESSED == 80
    assert etf.MAX_UNCOMPRESSED == 64 * 1024 * 1024
