"""Property tests of the term codec against a real Erlang node (tests/erlang/etf_peer.erl).

(1) Random Python terms: OTP's re-encoding of ``encode(T)`` is byte-identical to ``encode(T)``
    (when T holds no map with 2+ keys: OTP sorts map keys, Python keeps insertion order) and
    decodes back to exactly T.
(2) Random Erlang terms (refs, pids, ports, funs, exports, big maps, ...): decode then encode
    gives OTP's bytes back; the compressed form decodes to the same term.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from py_nodes.erldist.etf import decode, decode_prefix, encode, make_export
from py_nodes.erldist.terms import (
    Atom,
    BitString,
    ImproperList,
    Pid,
    Port,
    Reference,
)

# No skip without Erlang: like every other Erlang test this fails (CI installs Erlang/OTP, and a
# silent skip would hide a broken set-up).
pytestmark = [pytest.mark.erlang, pytest.mark.property]

PEER_SRC = Path(__file__).parent / "erlang" / "etf_peer.erl"
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Peer:
    """An ``erl`` process running etf_peer: one {packet,4} request, one reply."""

    def __init__(self, beam_dir: Path, log: IO[bytes]) -> None:
        self.proc = subprocess.Popen(
            ["erl", "-noinput", "-pa", str(beam_dir), "-run", "etf_peer", "main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )

    def request(self, body: bytes) -> tuple[int, bytes]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(struct.pack(">I", len(body)) + body)
        self.proc.stdin.flush()
        (size,) = struct.unpack(">I", self._read(4))
        reply = self._read(size)
        return reply[0], reply[1:]

    def _read(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        data = self.proc.stdout.read(n)
        if len(data) != n:
            raise RuntimeError(f"etf_peer exited (status {self.proc.poll()}); see its stderr")
        return data

    def reencode(self, data: bytes) -> bytes:
        """OTP's ``term_to_binary(binary_to_term(Data), [{minor_version, 2}])``."""
        status, body = self.request(b"\x00" + data)
        assert status == 0, f"binary_to_term failed: {body.decode(errors='replace')}"
        return body

    def generate(self, seed: int, depth: int) -> tuple[bytes, bytes]:
        """A random Erlang term of nesting ``depth``: (plain bytes, compressed bytes)."""
        status, body = self.request(b"\x01" + struct.pack(">QB", seed, depth))
        assert status == 0, body
        (size,) = struct.unpack(">I", body[:4])
        return body[4 : 4 + size], body[4 + size :]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    missing = [tool for tool in ("erl", "erlc") if shutil.which(tool) is None]
    assert not missing, f"these tests need Erlang/OTP; not on PATH: {', '.join(missing)}"
    beam_dir = tmp_path_factory.mktemp("etf_peer")
    subprocess.run(["erlc", "-o", str(beam_dir), str(PEER_SRC)], check=True)
    with open(beam_dir / "stderr.log", "wb") as log:
        node = Peer(beam_dir, log)
        try:
            yield node
        finally:
            node.close()


# --- strict comparison -------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal with identical types all the way down (1, 1.0 and True differ; so do 0.0, -0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack(">d", a) == struct.pack(">d", b)
    if type(a) in (tuple, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            match = [k for k in b if same(k, key)]
            if len(match) != 1 or not same(value, b[match[0]]):
                return False
        return True
    if type(a) is ImproperList:
        return same(a.items, b.items) and same(a.tail, b.tail)
    if type(a) in (Pid, Reference, Port):
        return a == b and type(a.node) is type(b.node) is Atom
    return bool(a == b)


def has_multikey_map(term: Any) -> bool:
    if type(term) is dict:
        return len(term) > 1 or any(
            has_multikey_map(k) or has_multikey_map(v) for k, v in term.items()
        )
    if type(term) in (tuple, list):
        return any(has_multikey_map(x) for x in term)
    if type(term) is ImproperList:
        return has_multikey_map(term.items) or has_multikey_map(term.tail)
    return False


# --- strategies -----------------------------------------------------------------------------

RESERVED = {"true", "false", "undefined"}  # these decode to True / False / None
names = st.text(max_size=12) | st.text(min_size=200, max_size=255) | st.text("é😀a", max_size=255)
atoms = names.filter(lambda s: s not in RESERVED).map(Atom)
nodes = st.sampled_from(["x@127.0.0.1", "y@127.0.0.1", "long_node_name@host.example.org"]).map(Atom)
u32 = st.integers(0, 2**32 - 1)
ints = (
    st.integers()
    | st.integers(-(2**2100), 2**2100)
    | st.sampled_from(
        [0, 255, 256, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**2040 - 1, 2**2040]
    )
)
floats = st.floats(allow_nan=False, allow_infinity=False)
pids = st.builds(Pid, nodes, u32, u32, u32)
refs = st.builds(Reference, nodes, u32, st.lists(u32, min_size=1, max_size=5).map(tuple))
ports = st.builds(Port, nodes, st.integers(0, 2**64 - 1), u32)


@st.composite
def bitstrings(draw: st.DrawFn) -> BitString:
    data = draw(st.binary(min_size=1, max_size=10))
    bits = draw(st.integers(1, 7))
    return BitString(data[:-1] + bytes([data[-1] & (0xFF00 >> bits) & 0xFF]), bits)


exports = st.builds(make_export, atoms, atoms, st.integers(0, 255))
hashable_leaves = st.one_of(
    ints, floats, atoms, st.binary(max_size=20), st.booleans(), st.none(), pids, refs, ports,
    bitstrings(),
)  # fmt: skip
hashables = st.recursive(
    hashable_leaves, lambda c: st.lists(c, max_size=3).map(tuple), max_leaves=6
)
leaves = st.one_of(hashable_leaves, exports, st.binary(max_size=300))
non_list_leaves = leaves  # an improper tail: anything but a list


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6).map(tuple),
        st.lists(children, max_size=6),
        st.lists(st.integers(0, 255), max_size=40),  # STRING_EXT
        st.builds(ImproperList, st.lists(children, min_size=1, max_size=4), non_list_leaves),
        st.dictionaries(hashables, children, max_size=5),
    )


terms = st.recursive(leaves, containers, max_leaves=25) | st.one_of(
    st.dictionaries(hashables, leaves, min_size=33, max_size=40),  # OTP's hash-ordered maps
    st.lists(st.integers(0, 255), min_size=256, max_size=300).map(tuple),  # LARGE_TUPLE_EXT
)


# --- properties -----------------------------------------------------------------------------


@SETTINGS
@given(terms)
def test_python_terms_match_otp(peer: Peer, term: Any) -> None:
    ours = encode(term)
    theirs = peer.reencode(ours)
    if not has_multikey_map(term):
        assert theirs == ours
    back = decode(theirs)
    assert same(back, term)
    assert encode(back) == theirs  # decode keeps OTP's map order


@SETTINGS
@given(seed=st.integers(0, 2**64 - 1), depth=st.integers(0, 4))
def test_erlang_terms_round_trip(peer: Peer, seed: int, depth: int) -> None:
    plain, compressed = peer.generate(seed, depth)
    term = decode(plain)
    assert encode(term) == plain
    assert same(decode(compressed), term)
    # Both back to back, as in a distribution frame.
    frame = b"p" + plain + compressed
    first, pos = decode_prefix(frame, 1, len(frame))
    second, end = decode_prefix(frame, pos, len(frame))
    assert pos == 1 + len(plain) and end == len(frame)
    assert same(first, term) and same(second, term)


EDGE_TERMS: list[Any] = [
    [7] * 65535,  # the longest STRING_EXT
    [7] * 65536,  # one more: LIST_EXT
    [0, 255],
    [256],
    [True, False],
    Atom("😀" * 63),  # 252 bytes: SMALL_ATOM_UTF8_EXT
    Atom("😀" * 64),  # 256 bytes: ATOM_UTF8_EXT
    Atom("ÿ" * 255),
    2**2040 - 1,  # 255 bytes: SMALL_BIG_EXT
    -(2**2040),  # 256 bytes: LARGE_BIG_EXT
    2**80000,
    5e-324,
    -0.0,
    1.7976931348623157e308,
    b"",
    BitString(b"\x01\x02\x80", 1),
    tuple(range(255)),
    tuple(range(256)),
    ImproperList([1, 2], b"tail"),
    ImproperList([[]], ()),
    Pid(Atom("x@127.0.0.1"), 2**32 - 1, 2**32 - 1, 2**32 - 1),
    Pid(Atom("x@127.0.0.1"), 0, 0, 0),
    Reference(Atom("x@127.0.0.1"), 0, (2**32 - 1,) * 5),
    Reference(Atom("x@127.0.0.1"), 1, (1,)),
    Port(Atom("x@127.0.0.1"), 2**28 - 1, 1),
    Port(Atom("x@127.0.0.1"), 2**28, 1),
    Port(Atom("x@127.0.0.1"), 2**32 - 1, 1),
    Port(Atom("x@127.0.0.1"), 2**32, 1),
    Port(Atom("x@127.0.0.1"), 2**64 - 1, 2**32 - 1),
    make_export("lists", "map", 2),
    make_export("😀", "ÿ", 255),
    {Atom("a"): {Atom("b"): {}}},
    {(1, b"x"): [1, 2, 3]},
]


@pytest.mark.parametrize("term", EDGE_TERMS, ids=lambda t: type(t).__name__)
def test_edge_terms_match_otp(peer: Peer, term: Any) -> None:
    ours = encode(term)
    theirs = peer.reencode(ours)
    assert theirs == ours
    assert same(decode(theirs), term)


def test_python_str_is_an_otp_binary(peer: Peer) -> None:
    assert peer.reencode(encode("héllo 😀")) == encode("héllo 😀".encode())


def test_otp_rejects_what_we_reject(peer: Peer) -> None:
    """Bytes our decoder refuses are refused by OTP too (where OTP has the same rule)."""
    for data in [
        b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
        b"\x83M\x00\x00\x00\x01\x00\xff",  # 0 bits in a non-empty bitstring
        b"\x83t\x00\x00\x00\x02a\x01a\x01a\x01a\x02",  # duplicate map key
        b"\x83w\x02\xc3(",  # invalid UTF-8 atom
        b"\x83P\x00\x00\x00\x00x\x9c\x03\x00\x00\x00\x00\x01",  # compressed, size 0
    ]:
        status, _ = peer.request(b"\x00" + data)
        assert status == 1, data
