"""Fuzzing the term decoder: any bytes give a term or a DecodeError, never another exception,
and never much more memory than the input's size.

Every DecodeError must come from an explicit check: the catch-all backstop in ``decode_prefix``
chains the original exception (``__cause__``), so a chained DecodeError here is a missed check.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from py_nodes.erldist.errors import DecodeError
from py_nodes.erldist.etf import (
    SendControlCache,
    decode,
    decode_frame,
    decode_prefix,
    encode,
    encode_frame,
    make_export,
)
from py_nodes.erldist.terms import (
    Atom,
    BitString,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.property]

FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every tag the format defines, plus a few that it does not.
TAGS = [68, 69, 70, 77, 80, 82, 88, 89, 90, *range(97, 122), 0, 255]

BIG_LENGTHS = [b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x10\x00\x00", b"\xff\xff", b"\xff"]

# fun(X) -> X end, from OTP 25 (see test_etf.py), so funs appear in the fuzzed terms.
FUN = Fun(
    b"\x00\x00\x00H\x01\xe29\xdbr\xc9S\xee=s\xb6>/i\xad\xb3\xbe\x00\x00\x00\x00\x00\x00"
    b"\x00\x00w\x06funmoda\x00b\x07\x11\xce\xdbXw\rnonode@nohost\x00\x00\x00\t\x00\x00\x00\x00"
    b"\x00\x00\x00\x00"
)

node = st.sampled_from(["a@h", "b@127.0.0.1"]).map(Atom)
u32 = st.integers(0, 2**32 - 1)
atoms = st.text(max_size=8).map(Atom)
hashable = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    atoms,
    st.binary(max_size=16),
    st.booleans(),
    st.none(),
    st.builds(Pid, node, u32, u32, u32),
    st.builds(Reference, node, u32, st.lists(u32, min_size=1, max_size=5).map(tuple)),
    st.builds(Port, node, st.integers(0, 2**64 - 1), u32),
    st.builds(BitString, st.binary(min_size=1, max_size=4), st.integers(1, 7)),
)
leaves = hashable | st.just(FUN) | st.builds(make_export, atoms, atoms, st.integers(0, 255))
terms = st.recursive(
    leaves,
    lambda c: st.one_of(
        st.lists(c, max_size=5).map(tuple),
        st.lists(c, max_size=5),
        st.lists(st.integers(0, 255), max_size=20),
        st.builds(ImproperList, st.lists(c, min_size=1, max_size=3), leaves),
        st.dictionaries(hashable, c, max_size=4),
    ),
    max_leaves=20,
)


def compressed(data: bytes) -> bytes:
    body = data[1:]
    return b"\x83P" + struct.pack(">I", len(body)) + zlib.compress(body)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding (maybe compressed), then 1-4 bit flips, cuts, inserts, inflated lengths."""
    data = encode(draw(terms))
    if draw(st.booleans()) and draw(st.booleans()):
        data = compressed(data)
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "inflate", "tag"]))
        if op == "flip":
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del buf[i:]
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=6))
        elif op == "delete":
            del buf[i : i + draw(st.integers(1, 6))]
        elif op == "inflate":  # overwrite a (possible) length field with a large value
            big = draw(st.sampled_from(BIG_LENGTHS))
            buf[i : i + len(big)] = big
        else:
            buf[i] = draw(st.sampled_from(TAGS))
    return bytes(buf)


def check(data: bytes, **kwargs: Any) -> None:
    """decode returns or raises an explicit DecodeError; what it returns encodes stably."""
    try:
        term = decode(data, **kwargs)
    except DecodeError as exc:
        assert exc.__cause__ is None, f"backstop caught {exc.__cause__!r}"
        assert str(exc).startswith(f"offset {exc.offset}: ")
        return
    again = encode(term)
    assert encode(decode(again)) == again


@FUZZ
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x83")
@example(b"\x83P\xff\xff\xff\xff")
def test_random_bytes(data: bytes) -> None:
    check(data)
    check(b"\x83" + data)


@FUZZ
@given(st.lists(st.sampled_from(TAGS) | st.integers(0, 255), max_size=60).map(bytes))
def test_random_tag_soup(data: bytes) -> None:
    check(b"\x83" + data)
    check(b"\x83" + data, max_depth=3)


@FUZZ
@given(mutated())
def test_mutated_encodings(data: bytes) -> None:
    check(data)


@FUZZ
@given(terms)
def test_valid_encodings_round_trip(term: Any) -> None:
    data = encode(term)
    assert encode(decode(data)) == data  # maps keep their order
    assert encode(decode(compressed(data))) == data


@FUZZ
@given(st.binary(max_size=80), st.integers(-3, 90), st.integers(-3, 90))
def test_decode_prefix_any_window(data: bytes, offset: int, end: int) -> None:
    try:
        _, after = decode_prefix(data, offset, end)
    except DecodeError as exc:
        assert exc.__cause__ is None, f"backstop caught {exc.__cause__!r}"
    else:
        assert offset < after <= min(end, len(data))


_ABSENT = object()


def _frame_by_prefixes(data: bytes, end: int) -> tuple[Any, Any]:
    """What decode_frame must equal: the reference path, two decode_prefix calls."""
    control, at = decode_prefix(data, 0, end)
    if at >= end:
        return control, _ABSENT
    message, at = decode_prefix(data, at, end)
    if at != end:
        raise DecodeError(at, "bytes after the payload")
    return control, message


@FUZZ
@given(terms, st.one_of(st.just(_ABSENT), terms), st.booleans(), st.data())
def test_decode_frame_equals_two_prefix_decodes(control: Any, message: Any, squeeze: bool, data: st.DataObject) -> None:
    """The fast one-call frame decoder (decoded inline leaves, no version re-checks) gives the
    same terms as the reference path on whole frames (plain or compressed payloads), and on
    truncated or mutated ones fails where the reference fails (a DecodeError, same offset)."""
    frame = bytes(encode_frame(control, message, _ABSENT))
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4 and frame[4:5] == b"p"
    body = frame[5:]
    if squeeze and message is not _ABSENT:  # a compressed payload, as OTP may send
        body = encode(control) + compressed(encode(message))
    assert encode(decode_frame(body, 0, len(body), _ABSENT)[0]) == encode(control)
    got = decode_frame(body, 0, len(body), _ABSENT)[1]
    assert got is _ABSENT if message is _ABSENT else encode(got) == encode(message)
    if message is not _ABSENT:  # a third term after the payload is refused, where it starts
        with pytest.raises(DecodeError) as trailing:
            decode_frame(body + encode(0), 0, len(body) + 3, _ABSENT)
        assert trailing.value.offset == len(body)
    cut = data.draw(st.integers(0, len(body)))
    flip = data.draw(st.integers(0, max(0, len(body) - 1)))
    if data.draw(st.booleans()):
        broken = body[:cut]
    else:
        broken = body[:flip] + bytes([body[flip] ^ 0x5A]) + body[flip + 1 :]
    try:
        expected: Any = _frame_by_prefixes(broken, len(broken))
    except DecodeError as exc:
        with pytest.raises(DecodeError) as raised:
            decode_frame(broken, 0, len(broken), _ABSENT)
        assert raised.value.__cause__ is None and raised.value.offset == exc.offset
    else:
        got_control, got_message = decode_frame(broken, 0, len(broken), _ABSENT)
        assert encode(got_control) == encode(expected[0])
        assert (got_message is _ABSENT) == (expected[1] is _ABSENT)


_SENDER = Pid(Atom("a@h"), 7, 0, 3)
# Controls as peers send them: sends from a few senders to a few names (what the cache keeps),
# monitors (never kept), and anything at all (a misbehaving peer).
send_controls = st.one_of(
    st.builds(lambda to: (6, _SENDER, Atom(""), Atom(to)), st.sampled_from(["sink", "echo"])),
    st.builds(lambda pid: (22, _SENDER, pid), st.builds(Pid, node, u32, u32, u32)),
    st.builds(lambda ids: (19, _SENDER, Atom("echo"), Reference(Atom("a@h"), 3, ids)), st.lists(u32, min_size=1, max_size=3).map(tuple)),
    terms,
)


@FUZZ
@given(st.lists(st.tuples(send_controls, terms, st.integers(-1, 400)), min_size=1, max_size=8))
def test_decode_frame_with_a_control_cache_equals_without(frames: list[tuple[Any, Any, int]]) -> None:
    """A connection's frames decoded in order with one SendControlCache give the same terms (or
    the same DecodeError, at the same offset) as without it, whatever came before: whole frames,
    and frames with one byte flipped (``flip`` >= 0), e.g. inside a cached control's bytes."""
    cache = SendControlCache()
    for control, message, flip in frames:
        body = bytes(encode_frame(control, message, _ABSENT))[5:]
        if 0 <= flip < len(body):
            body = body[:flip] + bytes([body[flip] ^ 0x5A]) + body[flip + 1 :]
        try:
            expected = decode_frame(body, 0, len(body), _ABSENT)
        except DecodeError as exc:
            with pytest.raises(DecodeError) as raised:
                decode_frame(body, 0, len(body), _ABSENT, cache=cache)
            assert raised.value.offset == exc.offset
            continue
        got = decode_frame(body, 0, len(body), _ABSENT, cache=cache)
        assert [encode(t) for t in got] == [encode(t) for t in expected]


def test_control_cache_keeps_the_last_send_only() -> None:
    """A repeated send's control is the one cached object; a monitor in between does not evict
    it; a send holding a list (mutable) is never kept; a new send replaces the old one."""
    cache = SendControlCache()
    to_sink = (6, _SENDER, Atom(""), Atom("sink"))

    def control_of(control: Any) -> Any:
        body = bytes(encode_frame(control, (Atom("seq"), 1), _ABSENT))[5:]
        return decode_frame(body, 0, len(body), _ABSENT, cache=cache)[0]

    first = control_of(to_sink)
    assert first == to_sink and cache.term is first
    control_of((19, _SENDER, Atom("sink"), Reference(Atom("a@h"), 3, (1, 2, 3))))
    assert control_of(to_sink) is first
    assert control_of((6, _SENDER, [1], Atom("sink"))) == (6, _SENDER, [1], Atom("sink"))
    assert cache.term is first
    to_echo = control_of((6, _SENDER, Atom(""), Atom("echo")))
    assert cache.term is to_echo and to_echo[3] == "echo"


@FUZZ
@given(terms, st.data())
def test_truncation_anywhere_is_a_decode_error(term: Any, data: st.DataObject) -> None:
    full = encode(term)
    cut = data.draw(st.integers(0, len(full) - 1))
    with pytest.raises(DecodeError) as info:
        decode_prefix(full + b"\x00" * 8, 0, cut)  # bytes exist past `end` but must not be read
    assert info.value.__cause__ is None


# --- memory -------------------------------------------------------------------------------


# The start of a zlib stream that would inflate to 10 MB of zeros.
_ZEROS_ZLIB = zlib.compress(bytes(10_000_000), 9)[:14]


HUGE_CLAIMS = {
    "binary": b"\x83m\xff\xff\xff\xff" + bytes(14),
    "bitstring": b"\x83M\xff\xff\xff\xff\x01" + bytes(13),
    "list": b"\x83l\xff\xff\xff\xff" + b"j" * 14,
    "large tuple": b"\x83i\xff\xff\xff\xff" + b"j" * 14,
    "map": b"\x83t\xff\xff\xff\xff" + b"j" * 14,
    "string": b"\x83k\xff\xff" + bytes(16),
    "large big": b"\x83o\xff\xff\xff\xff\x00" + bytes(13),
    "atom": b"\x83v\xff\xff" + b"a" * 16,
    "fun": b"\x83p\xff\xff\xff\xff" + bytes(14),
    "compressed 4 GiB": b"\x83P\xff\xff\xff\xff" + _ZEROS_ZLIB,
    "compressed 64 MiB": b"\x83P\x03\xff\xff\xff" + _ZEROS_ZLIB,
    "nested tuples": b"\x83" + b"h\xff" * 9 + b"j",
}


@pytest.mark.parametrize("data", HUGE_CLAIMS.values(), ids=HUGE_CLAIMS.keys())
def test_huge_claims_allocate_nothing(data: bytes) -> None:
    assert len(data) == 20
    decode(b"\x83a\x00")  # warm up
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"peak {peak} bytes for a 20-byte input"


def test_compressed_bomb_allocates_only_what_it_claims() -> None:
    bomb = zlib.compress(bytes(50_000_000), 9)  # ~50 KB inflating to 50 MB
    data = b"\x83P" + struct.pack(">I", 4096) + bomb
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="longer than the claimed 4096"):
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000 + 2 * len(data)


def test_memory_stays_proportional_to_input() -> None:
    n = 100_000
    data = b"\x83l" + struct.pack(">I", n) + b"j" * n + b"j"  # a list of 100k empty lists
    tracemalloc.start()
    try:
        assert len(decode(data)) == n
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * len(data)
