"""Erlang External Term Format: ``encode`` Python terms, ``decode`` bytes.

The mapping is the one in DESIGN.md (see ``terms.py``). Encoding picks exactly the tags OTP's
``term_to_binary(T, [{minor_version, 2}])`` picks, so the bytes are identical to OTP's (maps keep
Python insertion order; decoding keeps wire order, so decode -> encode is byte-identical).

Decoding is defensive: any input either yields a term or raises ``DecodeError`` naming the offset
and the problem. Every length field is checked against the bytes actually present before anything
is allocated, nesting is bounded by ``max_depth`` and compressed terms by ``MAX_UNCOMPRESSED``.
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from typing import Any, Final

from .errors import DecodeError, EncodeError
from .terms import Atom, BitString, Export, Fun, ImproperList, Pid, Port, Reference

__all__ = [
    "MAX_UNCOMPRESSED",
    "SendControlCache",
    "decode",
    "decode_frame",
    "decode_prefix",
    "encode",
    "encode_frame",
    "make_export",
]

# Tags (erts/emulator/beam/external.h).
VERSION: Final = 131
COMPRESSED: Final = 80
DIST_HEADER: Final = 68
DIST_FRAG_HEADER: Final = 69
ATOM_CACHE_REF: Final = 82
NEW_FLOAT_EXT: Final = 70
BIT_BINARY_EXT: Final = 77
NEW_PID_EXT: Final = 88
NEW_PORT_EXT: Final = 89
NEWER_REFERENCE_EXT: Final = 90
SMALL_INTEGER_EXT: Final = 97
INTEGER_EXT: Final = 98
FLOAT_EXT: Final = 99
ATOM_EXT: Final = 100
REFERENCE_EXT: Final = 101
PORT_EXT: Final = 102
PID_EXT: Final = 103
SMALL_TUPLE_EXT: Final = 104
LARGE_TUPLE_EXT: Final = 105
NIL_EXT: Final = 106
STRING_EXT: Final = 107
LIST_EXT: Final = 108
BINARY_EXT: Final = 109
SMALL_BIG_EXT: Final = 110
LARGE_BIG_EXT: Final = 111
NEW_FUN_EXT: Final = 112
EXPORT_EXT: Final = 113
NEW_REFERENCE_EXT: Final = 114
SMALL_ATOM_EXT: Final = 115
MAP_EXT: Final = 116
FUN_EXT: Final = 117
ATOM_UTF8_EXT: Final = 118
SMALL_ATOM_UTF8_EXT: Final = 119
V4_PORT_EXT: Final = 120
LOCAL_EXT: Final = 121

MAX_UNCOMPRESSED: Final = 64 * 1024 * 1024
"""Largest uncompressed size a COMPRESSED term may claim (bytes)."""

_ATOM_CACHE_MAX: Final = 65536  # entries; only atoms of at most _ATOM_CACHE_LEN bytes are cached
_ATOM_CACHE_LEN: Final = 64
_PID_CACHE_MAX: Final = 4096  # entries; cleared when full (pids come and go)
_MAX_REF_WORDS: Final = 5
# OTP 25 writes NEW_PORT_EXT only for port ids below 2**28 (ERTS_MAX_V3_PORT_NUMBER), else V4.
_V4_PORT_FROM: Final = 1 << 28
_NEW_FUN_MIN_SIZE: Final = 29  # Size(4) Arity(1) Uniq(16) Index(4) NumFree(4), before any term

_u16 = struct.Struct(">H").unpack_from
_u32 = struct.Struct(">I").unpack_from
_i32 = struct.Struct(">i").unpack_from
_f64 = struct.Struct(">d").unpack_from
_u32x2 = struct.Struct(">II").unpack_from
_u32x3 = struct.Struct(">III").unpack_from
_u64_u32 = struct.Struct(">QI").unpack_from
_ref_words = [struct.Struct(f">{n}I").unpack_from for n in range(_MAX_REF_WORDS + 1)]

_FLOAT_EXT_RE: Final = re.compile(rb"[+-]?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?")

_TAG_NAMES: Final = {
    DIST_HEADER: "DIST_HEADER (only valid in a distribution frame header)",
    DIST_FRAG_HEADER: "DIST_FRAG_HEADER (fragmented distribution messages are not supported)",
    ATOM_CACHE_REF: "ATOM_CACHE_REF (the distribution atom cache is not supported)",
    COMPRESSED: "COMPRESSED (only allowed right after the version byte)",
}

# Decoded atoms by their raw UTF-8 bytes; true/false/undefined map to bool/None.
_atoms: dict[bytes, Any] = {b"true": True, b"false": False, b"undefined": None}
# Atoms used where an atom is required (node names, export module/function): never bool/None.
_plain_atoms: dict[bytes, Atom] = {}
# Decoded NEW_PID_EXT pids by their raw bytes (tag included); Pid objects are never mutated.
_pids: dict[bytes, Pid] = {}
_MISS: Final = object()  # not in a cache (None is a cached value: undefined)


def _truncated(pos: int, end: int, need: int, what: str) -> DecodeError:
    return DecodeError(pos, f"{what} needs {need} bytes but only {max(end - pos, 0)} remain")


def _too_long(pos: int, what: str, n: int, remaining: int) -> DecodeError:
    return DecodeError(pos, f"{what} {n} exceeds the {remaining} bytes remaining")


def _atom_text(raw: bytes, latin1: bool, pos: int) -> str:
    """Decode atom bytes; ``pos`` is the offset of the atom's tag (for messages)."""
    if latin1:
        text = raw.decode("latin-1")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(pos, f"atom is not valid UTF-8 ({exc.reason})") from None
    if len(text) > 255:
        raise DecodeError(pos, f"atom has {len(text)} characters; Erlang allows at most 255")
    return text


def _new_atom(raw: bytes, latin1: bool, pos: int) -> Any:
    """Slow path of atom decoding (cache miss; true/false/undefined are always cached)."""
    value: Any = Atom(_atom_text(raw, latin1, pos))
    if latin1:  # non-ASCII latin-1 bytes would clash with UTF-8 keys: not cached
        return value
    if len(raw) <= _ATOM_CACHE_LEN and len(_atoms) < _ATOM_CACHE_MAX:
        _atoms[raw] = value
    return value


def _dec_plain_atom(data: bytes, pos: int, end: int, what: str) -> tuple[Atom, int]:
    """Decode an atom that must stay an ``Atom`` (node name, module, function)."""
    if pos >= end:
        raise _truncated(pos, end, 1, what)
    tag = data[pos]
    if tag == SMALL_ATOM_UTF8_EXT or tag == SMALL_ATOM_EXT:  # noqa: SIM109 (no tuple built)
        if pos + 2 > end:
            raise _truncated(pos, end, 2, what)
        start = pos + 2
        stop = start + data[pos + 1]
    elif tag in (ATOM_UTF8_EXT, ATOM_EXT):
        if pos + 3 > end:
            raise _truncated(pos, end, 3, what)
        start = pos + 3
        stop = start + _u16(data, pos + 1)[0]
    else:
        raise DecodeError(pos, f"{what} must be an atom, found tag {tag}")
    if stop > end:
        raise _too_long(pos, f"{what} atom length", stop - start, end - start)
    raw = data[start:stop]
    latin1 = tag in (SMALL_ATOM_EXT, ATOM_EXT) and not raw.isascii()
    atom = None if latin1 else _plain_atoms.get(raw)
    if atom is None:
        atom = Atom(_atom_text(raw, latin1, pos))
        if not latin1 and len(raw) <= _ATOM_CACHE_LEN and len(_plain_atoms) < _ATOM_CACHE_MAX:
            _plain_atoms[raw] = atom
    return atom, stop


def _unhashable(key: Any) -> str:
    if isinstance(key, list):
        return "a list"
    if isinstance(key, dict):
        return "a map"
    if isinstance(key, ImproperList):
        return "an improper list"
    return "a tuple containing a list or map"


def _dec(data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    """Decode the term whose tag is at ``pos``; return it and the offset just after it."""
    if pos >= end:
        raise DecodeError(pos, "data ends where a term was expected")
    tag = data[pos]
    if tag == SMALL_TUPLE_EXT:
        if pos + 2 > end:
            raise _truncated(pos, end, 2, "SMALL_TUPLE_EXT header")
        n = data[pos + 1]
        pos += 2
        if n > end - pos:
            raise _too_long(pos - 2, "tuple arity", n, end - pos)
        if depth <= 0:
            raise DecodeError(pos - 2, "terms nested deeper than max_depth")
        depth -= 1
        items = []
        for _ in range(n):
            # The common leaves of control and gen_server messages are decoded here, without a
            # call: cached atoms and pids, small integers, binaries. Anything else, or anything
            # short or unknown, goes through _dec (which also raises the errors).
            if pos + 2 <= end:
                leaf = data[pos]
                if leaf == SMALL_ATOM_UTF8_EXT:
                    stop = pos + 2 + data[pos + 1]
                    if stop <= end:
                        item = _atoms.get(data[pos + 2 : stop], _MISS)
                        if item is not _MISS:
                            items.append(item)
                            pos = stop
                            continue
                elif leaf == SMALL_INTEGER_EXT:
                    items.append(data[pos + 1])
                    pos += 2
                    continue
                elif leaf == INTEGER_EXT:
                    if pos + 5 <= end:
                        items.append(_i32(data, pos + 1)[0])
                        pos += 5
                        continue
                elif leaf == BINARY_EXT:
                    if pos + 5 <= end:
                        stop = pos + 5 + _u32(data, pos + 1)[0]
                        if stop <= end:
                            items.append(data[pos + 5 : stop])
                            pos = stop
                            continue
                elif leaf == NEW_PID_EXT:
                    stop = pos + 15 + data[pos + 2] if pos + 3 <= end else end + 1
                    if stop <= end:
                        item = _pids.get(data[pos:stop])
                        if item is not None:
                            items.append(item)
                            pos = stop
                            continue
            item, pos = _dec(data, pos, end, depth)
            items.append(item)
        return tuple(items), pos
    if tag == SMALL_ATOM_UTF8_EXT:
        if pos + 2 > end:
            raise _truncated(pos, end, 2, "SMALL_ATOM_UTF8_EXT header")
        stop = pos + 2 + data[pos + 1]
        if stop > end:
            raise _too_long(pos, "atom length", stop - pos - 2, end - pos - 2)
        raw = data[pos + 2 : stop]
        try:
            return _atoms[raw], stop
        except KeyError:
            return _new_atom(raw, False, pos), stop
    if tag == SMALL_INTEGER_EXT:
        if pos + 2 > end:
            raise _truncated(pos, end, 2, "SMALL_INTEGER_EXT")
        return data[pos + 1], pos + 2
    if tag == INTEGER_EXT:
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "INTEGER_EXT")
        return _i32(data, pos + 1)[0], pos + 5
    if tag == BINARY_EXT:
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "BINARY_EXT header")
        stop = pos + 5 + _u32(data, pos + 1)[0]
        if stop > end:
            raise _too_long(pos, "binary length", stop - pos - 5, end - pos - 5)
        return data[pos + 5 : stop], stop
    if tag == NEW_PID_EXT:
        # Pids recur (senders, receivers): look them up by their raw bytes, guessing the node
        # is a SMALL_ATOM_UTF8_EXT. A hit is exact whatever the guess: keys are whole pids.
        if pos + 3 <= end:
            stop = pos + 15 + data[pos + 2]
            if stop <= end:
                pid = _pids.get(data[pos:stop])
                if pid is not None:
                    return pid, stop
        node, stop = _dec_plain_atom(data, pos + 1, end, "pid node")
        if stop + 12 > end:
            raise _truncated(stop, end, 12, "NEW_PID_EXT id/serial/creation")
        pid_id, serial, creation = _u32x3(data, stop)
        pid = Pid(node, pid_id, serial, creation)
        stop += 12
        if len(_pids) >= _PID_CACHE_MAX:
            _pids.clear()
        _pids[data[pos:stop]] = pid
        return pid, stop
    if tag == NIL_EXT:
        return [], pos + 1
    if tag == LIST_EXT:
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "LIST_EXT header")
        start = pos
        n = _u32(data, pos + 1)[0]
        pos += 5
        if n >= end - pos:  # n elements plus a tail, at least one byte each
            raise DecodeError(
                start, f"list length {n} (plus a tail) exceeds the {end - pos} bytes remaining"
            )
        if depth <= 0:
            raise DecodeError(start, "terms nested deeper than max_depth")
        depth -= 1
        items = []
        for _ in range(n):
            item, pos = _dec(data, pos, end, depth)
            items.append(item)
        tail, pos = _dec(data, pos, end, depth)
        if type(tail) is list:  # NIL (proper list), or a hand-crafted list tail: flatten
            if tail:
                items.extend(tail)
            return items, pos
        if not items:  # [ | T] is just T
            return tail, pos
        if type(tail) is ImproperList:
            return ImproperList(items + tail.items, tail.tail), pos
        return ImproperList(items, tail), pos
    if tag == MAP_EXT:
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "MAP_EXT header")
        start = pos
        n = _u32(data, pos + 1)[0]
        pos += 5
        if n > (end - pos) >> 1:  # a key and a value, at least one byte each
            raise _too_long(start, "map arity", n, end - pos)
        if depth <= 0:
            raise DecodeError(start, "terms nested deeper than max_depth")
        depth -= 1
        result: dict[Any, Any] = {}
        for i in range(n):
            key_pos = pos
            # Maps of atoms to numbers (telemetry, satellite states) are most of the traffic:
            # a cached atom key and a float or small integer value are read here, without a call.
            key = _MISS
            if pos + 2 <= end and data[pos] == SMALL_ATOM_UTF8_EXT:
                stop = pos + 2 + data[pos + 1]
                if stop <= end:
                    key = _atoms.get(data[pos + 2 : stop], _MISS)
                    if key is not _MISS:
                        pos = stop
            if key is _MISS:
                key, pos = _dec(data, pos, end, depth)
            leaf = data[pos] if pos < end else -1
            if leaf == NEW_FLOAT_EXT and pos + 9 <= end:
                value = _f64(data, pos + 1)[0]
                if value - value != 0.0:
                    raise DecodeError(pos, f"float is {value}, which Erlang does not have")
                pos += 9
            elif leaf == SMALL_INTEGER_EXT and pos + 2 <= end:
                value = data[pos + 1]
                pos += 2
            else:
                value, pos = _dec(data, pos, end, depth)
            try:
                result[key] = value
            except TypeError:
                raise DecodeError(
                    key_pos,
                    f"map key at offset {key_pos} is {_unhashable(key)}, which Python cannot hash",
                ) from None
            if len(result) <= i:
                raise DecodeError(
                    key_pos,
                    f"map key at offset {key_pos} ({key!r}) equals an earlier key in Python "
                    "(duplicate key, or keys like 1 and 1.0, or 1 and true)",
                )
        return result, pos
    if tag == STRING_EXT:
        if pos + 3 > end:
            raise _truncated(pos, end, 3, "STRING_EXT header")
        stop = pos + 3 + _u16(data, pos + 1)[0]
        if stop > end:
            raise _too_long(pos, "string length", stop - pos - 3, end - pos - 3)
        return list(data[pos + 3 : stop]), stop
    if tag in (NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT):
        if pos + 3 > end:
            raise _truncated(pos, end, 3, "reference header")
        start = pos
        n = _u16(data, pos + 1)[0]
        if not 1 <= n <= _MAX_REF_WORDS:
            raise DecodeError(start, f"reference has {n} id words; expected 1 to 5")
        node, pos = _dec_plain_atom(data, pos + 3, end, "reference node")
        width = 4 if tag == NEWER_REFERENCE_EXT else 1
        if pos + width + 4 * n > end:
            raise _truncated(pos, end, width + 4 * n, "reference creation and ids")
        creation = _u32(data, pos)[0] if width == 4 else data[pos]
        pos += width
        return Reference(node, creation, _ref_words[n](data, pos)), pos + 4 * n
    if tag == SMALL_BIG_EXT:
        if pos + 3 > end:
            raise _truncated(pos, end, 3, "SMALL_BIG_EXT header")
        stop = pos + 3 + data[pos + 1]
        if stop > end:
            raise _too_long(pos, "big integer length", stop - pos - 3, end - pos - 3)
        value = int.from_bytes(data[pos + 3 : stop], "little")
        return (-value if data[pos + 2] else value), stop
    if tag == NEW_FLOAT_EXT:
        if pos + 9 > end:
            raise _truncated(pos, end, 9, "NEW_FLOAT_EXT")
        number = _f64(data, pos + 1)[0]
        if number - number != 0.0:
            raise DecodeError(pos, f"float is {number}, which Erlang does not have")
        return number, pos + 9
    if tag in (NEW_PORT_EXT, V4_PORT_EXT, PORT_EXT):
        node, pos = _dec_plain_atom(data, pos + 1, end, "port node")
        if tag == NEW_PORT_EXT:
            if pos + 8 > end:
                raise _truncated(pos, end, 8, "NEW_PORT_EXT id/creation")
            port_id, creation = _u32x2(data, pos)
            return Port(node, port_id, creation), pos + 8
        if tag == V4_PORT_EXT:
            if pos + 12 > end:
                raise _truncated(pos, end, 12, "V4_PORT_EXT id/creation")
            port_id, creation = _u64_u32(data, pos)
            return Port(node, port_id, creation), pos + 12
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "PORT_EXT id/creation")
        return Port(node, _u32(data, pos)[0], data[pos + 4]), pos + 5
    if tag in (ATOM_UTF8_EXT, ATOM_EXT, SMALL_ATOM_EXT):
        if tag == SMALL_ATOM_EXT:
            if pos + 2 > end:
                raise _truncated(pos, end, 2, "SMALL_ATOM_EXT header")
            start = pos + 2
            stop = start + data[pos + 1]
        else:
            if pos + 3 > end:
                raise _truncated(pos, end, 3, "atom header")
            start = pos + 3
            stop = start + _u16(data, pos + 1)[0]
        if stop > end:
            raise _too_long(pos, "atom length", stop - start, end - start)
        raw = data[start:stop]
        latin1 = tag != ATOM_UTF8_EXT and not raw.isascii()  # ASCII: same text either way
        if not latin1 and raw in _atoms:
            return _atoms[raw], stop
        return _new_atom(raw, latin1, pos), stop
    if tag == LARGE_TUPLE_EXT:
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "LARGE_TUPLE_EXT header")
        start = pos
        n = _u32(data, pos + 1)[0]
        pos += 5
        if n > end - pos:
            raise _too_long(start, "tuple arity", n, end - pos)
        if depth <= 0:
            raise DecodeError(start, "terms nested deeper than max_depth")
        depth -= 1
        items = []
        for _ in range(n):
            item, pos = _dec(data, pos, end, depth)
            items.append(item)
        return tuple(items), pos
    if tag == LARGE_BIG_EXT:
        if pos + 6 > end:
            raise _truncated(pos, end, 6, "LARGE_BIG_EXT header")
        stop = pos + 6 + _u32(data, pos + 1)[0]
        if stop > end:
            raise _too_long(pos, "big integer length", stop - pos - 6, end - pos - 6)
        value = int.from_bytes(data[pos + 6 : stop], "little")
        return (-value if data[pos + 5] else value), stop
    if tag == BIT_BINARY_EXT:
        if pos + 6 > end:
            raise _truncated(pos, end, 6, "BIT_BINARY_EXT header")
        n = _u32(data, pos + 1)[0]
        bits = data[pos + 5]
        stop = pos + 6 + n
        if stop > end:
            raise _too_long(pos, "bitstring length", n, end - pos - 6)
        if n == 0:
            if bits != 0:
                raise DecodeError(pos, f"empty bitstring with {bits} bits in its last byte")
            return b"", stop
        if not 1 <= bits <= 8:
            raise DecodeError(pos, f"bitstring has {bits} bits in its last byte; expected 1 to 8")
        if bits == 8:
            return data[pos + 6 : stop], stop
        # Unused low bits carry no value: clear them, as OTP does.
        body = data[pos + 6 : stop - 1] + bytes((data[stop - 1] & (0xFF00 >> bits) & 0xFF,))
        return BitString(body, bits), stop
    if tag == NEW_FUN_EXT:
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "NEW_FUN_EXT size")
        size = _u32(data, pos + 1)[0]
        if size < _NEW_FUN_MIN_SIZE:
            raise DecodeError(pos, f"NEW_FUN_EXT size {size} is below the minimum of 29")
        if size > end - pos - 1:
            raise _too_long(pos, "NEW_FUN_EXT size", size, end - pos - 1)
        return Fun(data[pos + 1 : pos + 1 + size]), pos + 1 + size
    if tag == EXPORT_EXT:
        start = pos
        module, pos = _dec_plain_atom(data, pos + 1, end, "export module")
        function, pos = _dec_plain_atom(data, pos, end, "export function")
        if pos + 2 > end:
            raise _truncated(pos, end, 2, "export arity")
        if data[pos] == SMALL_INTEGER_EXT:
            arity = data[pos + 1]
            pos += 2
        elif data[pos] == INTEGER_EXT and pos + 5 <= end:
            arity = _i32(data, pos + 1)[0]
            pos += 5
            if not 0 <= arity <= 255:
                raise DecodeError(pos - 5, f"export arity {arity} is outside 0..255")
        else:
            raise DecodeError(pos, "export arity must be a small integer")
        return Export(module, function, arity, data[start + 1 : pos]), pos
    if tag == PID_EXT:
        node, pos = _dec_plain_atom(data, pos + 1, end, "pid node")
        if pos + 9 > end:
            raise _truncated(pos, end, 9, "PID_EXT id/serial/creation")
        pid_id, serial = _u32x2(data, pos)
        return Pid(node, pid_id, serial, data[pos + 8]), pos + 9
    if tag == REFERENCE_EXT:
        node, pos = _dec_plain_atom(data, pos + 1, end, "reference node")
        if pos + 5 > end:
            raise _truncated(pos, end, 5, "REFERENCE_EXT id/creation")
        return Reference(node, data[pos + 4], _ref_words[1](data, pos)), pos + 5
    if tag == FLOAT_EXT:
        if pos + 32 > end:
            raise _truncated(pos, end, 32, "FLOAT_EXT")
        text = data[pos + 1 : pos + 32].split(b"\0", 1)[0]
        if not _FLOAT_EXT_RE.fullmatch(text):
            raise DecodeError(pos, f"FLOAT_EXT text {text!r} is not a float")
        number = float(text)
        if number - number != 0.0:
            raise DecodeError(pos, f"float is {number}, which Erlang does not have")
        return number, pos + 32
    if tag == LOCAL_EXT:
        raise DecodeError(pos, "LOCAL_EXT is node-local and cannot be decoded here")
    if tag == FUN_EXT:
        raise DecodeError(pos, "FUN_EXT (pre-R16) not supported")
    if tag in _TAG_NAMES:
        raise DecodeError(pos, f"unexpected tag {tag}: {_TAG_NAMES[tag]}")
    raise DecodeError(pos, f"unknown tag {tag}")


def _dec_compressed(data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    """COMPRESSED at ``pos``: u32 uncompressed size, then a zlib stream holding one term."""
    if pos + 5 > end:
        raise _truncated(pos, end, 5, "COMPRESSED header")
    size = _u32(data, pos + 1)[0]
    if size == 0:
        raise DecodeError(pos, "compressed term claims an uncompressed size of 0")
    if size > MAX_UNCOMPRESSED:
        raise DecodeError(
            pos, f"compressed term claims {size} bytes, over the limit of {MAX_UNCOMPRESSED}"
        )
    stream = zlib.decompressobj()
    try:
        # max_length bounds the output: a zlib bomb cannot produce more than `size` bytes.
        body = stream.decompress(memoryview(data)[pos + 5 : end], size)
        # Output stopped at `size`: one more byte out of the rest means the claim was a lie.
        if not stream.eof and len(body) == size and stream.decompress(stream.unconsumed_tail, 1):
            raise DecodeError(pos, f"compressed data is longer than the claimed {size} bytes")
    except zlib.error as exc:
        raise DecodeError(pos + 5, f"bad zlib data: {exc}") from None
    if not stream.eof:
        raise DecodeError(pos + 5, "zlib stream is truncated")
    if len(body) != size:
        raise DecodeError(pos, f"compressed data holds {len(body)} bytes, not the claimed {size}")
    try:
        term, inner = _dec(body, 0, size, depth)
    except DecodeError as exc:
        raise DecodeError(
            pos, f"in the decompressed term, offset {exc.offset}: {exc.problem}"
        ) from None
    if inner != size:
        raise DecodeError(pos, f"decompressed data has {size - inner} bytes after its term")
    return term, end - len(stream.unused_data)


def decode_prefix(data: bytes, offset: int, end: int, *, max_depth: int = 256) -> tuple[Any, int]:
    """Decode one term (starting with the 131 version byte at ``offset``) from ``data``.

    Never reads at or past ``end``. Returns ``(term, offset_after_term)``.
    """
    if type(data) is not bytes:  # slices must be hashable bytes for the caches
        data = bytes(data)
    if end > len(data):
        end = len(data)
    try:
        return _dec_versioned(data, offset, end, max_depth)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError(offset, "terms nested deeper than Python's recursion limit") from None
    except Exception as exc:  # backstop: explicit checks above should make this unreachable
        raise DecodeError(offset, f"malformed term ({type(exc).__name__}: {exc})") from exc


class SendControlCache:
    """One connection's most recent send control term, with its bytes (version byte first).

    A stream of messages from one sender to one destination repeats the same control term
    byte for byte, and an encoded term is self-delimiting: bytes that start with a cached
    encoding decode to the cached term, so the frame's payload is all that is left to decode.
    Only sends are kept (SEND, REG_SEND, SEND_SENDER), and only when every element is an
    immutable int, atom or pid: the one term object is handed out again.
    """

    __slots__ = ("raw", "term")

    def __init__(self) -> None:
        self.raw = b"\x00"  # matches no frame: a control term starts with the version byte
        self.term: Any = None

    def remember(self, data: bytes, start: int, stop: int, control: Any) -> None:
        """Keep ``control``, encoded as ``data[start:stop]``, if it is a send (sliced only then)."""
        if (
            type(control) is tuple
            and len(control) in (3, 4)
            and type(control[0]) is int
            and control[0] in _SEND_OPS  # monitors and links are not kept: a cheap no, first
            and all(type(item) in _CACHEABLE_LEAVES for item in control)
        ):
            self.raw, self.term = data[start:stop], control


_SEND_OPS: Final = frozenset({2, 6, 22})  # SEND, REG_SEND, SEND_SENDER
_CACHEABLE_LEAVES: Final = frozenset({int, Atom, Pid})


def decode_frame(
    data: bytes,
    offset: int,
    end: int,
    absent: Any,
    *,
    max_depth: int = 256,
    cache: SendControlCache | None = None,
) -> tuple[Any, Any]:
    """A distribution frame's body ``data[offset:end]``: a control term, then a payload term.

    Returns ``(control, payload)``, with ``absent`` for the payload when the control term ends
    the frame; bytes after the payload are an error. Same checks as two ``decode_prefix``
    calls, in one guarded call (this runs once per received message). With ``cache``, a
    control term equal byte for byte to the last send's is not decoded again.
    """
    if type(data) is not bytes:
        data = bytes(data)
    if end > len(data):
        end = len(data)
    at = offset
    try:
        if cache is not None and data.startswith(cache.raw, at, end):
            control = cache.term
            at += len(cache.raw)
        # Plain (uncompressed) terms go straight to _dec: two calls fewer per message.
        elif at + 1 < end and data[at] == VERSION and data[at + 1] != COMPRESSED:
            control, at = _dec(data, at + 1, end, max_depth)
            if cache is not None:
                cache.remember(data, offset, at, control)
        else:
            control, at = _dec_versioned(data, at, end, max_depth)
        if at >= end:
            return control, absent
        if at + 1 < end and data[at] == VERSION and data[at + 1] != COMPRESSED:
            message, at = _dec(data, at + 1, end, max_depth)
        else:
            message, at = _dec_versioned(data, at, end, max_depth)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError(at, "terms nested deeper than Python's recursion limit") from None
    except Exception as exc:  # backstop: explicit checks above should make this unreachable
        raise DecodeError(at, f"malformed term ({type(exc).__name__}: {exc})") from exc
    if at != end:
        raise DecodeError(at, f"{end - at} bytes after the payload in a frame")
    return control, message


def _dec_versioned(data: bytes, offset: int, end: int, depth: int) -> tuple[Any, int]:
    """One term with its version byte at ``offset`` (``end`` within ``data``)."""
    if offset >= end or offset < 0:
        raise DecodeError(offset, "data ends where a term (version byte 131) was expected")
    if data[offset] != VERSION:
        raise DecodeError(offset, f"version byte is {data[offset]}, expected 131")
    if offset + 1 < end and data[offset + 1] == COMPRESSED:
        return _dec_compressed(data, offset + 1, end, depth)
    return _dec(data, offset + 1, end, depth)


def decode(data: bytes | bytearray | memoryview, *, max_depth: int = 256) -> Any:
    """Decode exactly one whole term (version byte 131 first); trailing bytes are an error."""
    if type(data) is not bytes:
        data = bytes(data)
    end = len(data)
    term, pos = decode_prefix(data, 0, end, max_depth=max_depth)
    if pos != end:
        raise DecodeError(pos, f"{end - pos} trailing bytes after the term")
    return term


# --- encoding ---------------------------------------------------------------------------------

_pack_u32 = struct.Struct(">BI").pack  # tag + u32
_pack_u16 = struct.Struct(">BH").pack  # tag + u16
_pack_i32 = struct.Struct(">Bi").pack
_pack_f64 = struct.Struct(">Bd").pack
_pack_large_big = struct.Struct(">BIB").pack
_pack_bits = struct.Struct(">BIB").pack
_pack_u32x3 = struct.Struct(">III").pack
_pack_u32x2 = struct.Struct(">II").pack
_pack_u64_u32 = struct.Struct(">QI").pack
_pack_ref_head = struct.Struct(">BH").pack
_pack_ref_words = [struct.Struct(f">{n}I").pack for n in range(_MAX_REF_WORDS + 1)]

_SMALL_INTS: Final = [bytes((SMALL_INTEGER_EXT, i)) for i in range(256)]
_TRUE: Final = b"\x77\x04true"
_FALSE: Final = b"\x77\x05false"
_UNDEFINED: Final = b"\x77\x09undefined"
_INT_ONLY: Final = frozenset((int,))

_atom_bytes: dict[str, bytes] = {}  # encoded atoms (tag + length + UTF-8) by name


class _Unsupported(Exception):
    """Internal: a value that cannot be encoded; containers add themselves to ``trail``."""

    def __init__(self, value: Any, problem: str) -> None:
        super().__init__(problem)
        self.value = value
        self.problem = problem
        self.trail: list[Any] = []  # enclosing containers, innermost first


def _enc_atom(name: str) -> bytes:
    cached = _atom_bytes.get(name)
    if cached is not None:
        return cached
    if not isinstance(name, str):
        raise _Unsupported(name, f"expected an atom, got {type(name).__name__} {name!r:.80}")
    if len(name) > 255:
        raise _Unsupported(name, f"atom has {len(name)} characters; Erlang allows at most 255")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unsupported(name, "atom is not valid Unicode (lone surrogate)") from None
    n = len(raw)
    out = bytes((SMALL_ATOM_UTF8_EXT, n)) + raw if n < 256 else _pack_u16(ATOM_UTF8_EXT, n) + raw
    if len(_atom_bytes) < _ATOM_CACHE_MAX and n <= _ATOM_CACHE_LEN:
        _atom_bytes[name] = out
    return out


def _enc_big(x: int, buf: bytearray) -> None:
    sign = 0
    if x < 0:
        sign = 1
        x = -x
    n = (x.bit_length() + 7) >> 3
    if n < 256:
        buf += bytes((SMALL_BIG_EXT, n, sign))
    else:
        buf += _pack_large_big(LARGE_BIG_EXT, n, sign)
    buf += x.to_bytes(n, "little")


def _enc_binary(x: bytes | bytearray | memoryview, buf: bytearray) -> None:
    n = len(x) if type(x) is not memoryview else x.nbytes
    if n > 0xFFFFFFFF:
        raise _Unsupported(x, f"binary of {n} bytes exceeds the 4 GiB limit")
    buf += _pack_u32(BINARY_EXT, n)
    buf += x


def _enc(x: Any, buf: bytearray) -> None:
    """Append the encoding of ``x`` (without the version byte) to ``buf``."""
    t = type(x)
    if t is tuple:
        n = len(x)
        if n < 256:
            buf.append(SMALL_TUPLE_EXT)
            buf.append(n)
        else:
            buf += _pack_u32(LARGE_TUPLE_EXT, n)
        try:
            for item in x:
                _enc(item, buf)
        except _Unsupported as exc:
            exc.trail.append(x)
            raise
    elif t is Atom:
        buf += _atom_bytes.get(x) or _enc_atom(x)
    elif t is int:
        if 0 <= x <= 255:
            buf += _SMALL_INTS[x]
        elif -0x80000000 <= x <= 0x7FFFFFFF:
            buf += _pack_i32(INTEGER_EXT, x)
        else:
            _enc_big(x, buf)
    elif t is bytes:
        buf += _pack_u32(BINARY_EXT, len(x))
        buf += x
    elif t is Pid:
        encoded = x.encoded
        if encoded is None:
            try:
                encoded = x.encoded = bytes((NEW_PID_EXT,)) + _enc_atom(x.node) + _pack_u32x3(x.id, x.serial, x.creation)
            except (struct.error, _Unsupported):
                raise _Unsupported(
                    x, "pid needs an atom node and 32-bit id, serial, creation"
                ) from None
        buf += encoded
    elif t is bool:
        buf += _TRUE if x else _FALSE
    elif t is list:
        _enc_list(x, buf)
    elif t is str:
        try:
            raw = x.encode("utf-8")
        except UnicodeEncodeError:
            raise _Unsupported(x, "str is not valid Unicode (lone surrogate)") from None
        _enc_binary(raw, buf)
    elif t is dict:
        buf += _pack_u32(MAP_EXT, len(x))
        try:
            for key, value in x.items():
                _enc(key, buf)
                _enc(value, buf)
        except _Unsupported as exc:
            exc.trail.append(x)
            raise
    elif t is float:
        if x - x != 0.0:
            raise _Unsupported(x, f"float {x} has no Erlang equivalent")
        buf += _pack_f64(NEW_FLOAT_EXT, x)
    elif x is None:
        buf += _UNDEFINED
    else:
        _enc_other(x, t, buf)


def _enc_list(x: list[Any], buf: bytearray) -> None:
    n = len(x)
    if n == 0:
        buf.append(NIL_EXT)
        return
    if n < 65536:
        # STRING_EXT exactly when OTP uses it: every item an int 0..255 (bytes() checks the
        # range; the type check excludes bool and int subclasses).
        try:
            raw = bytes(x)
        except (TypeError, ValueError):
            pass
        else:
            if set(map(type, x)) == _INT_ONLY:
                buf += _pack_u16(STRING_EXT, n)
                buf += raw
                return
    buf += _pack_u32(LIST_EXT, n)
    try:
        for item in x:
            _enc(item, buf)
    except _Unsupported as exc:
        exc.trail.append(x)
        raise
    buf.append(NIL_EXT)


def _enc_other(x: Any, t: type, buf: bytearray) -> None:
    """The less frequent types, and subclasses of the builtin ones."""
    if t is Reference:
        n = len(x.ids)
        if not 1 <= n <= _MAX_REF_WORDS:
            raise _Unsupported(x, f"reference has {n} id words; expected 1 to 5")
        try:
            buf += _pack_ref_head(NEWER_REFERENCE_EXT, n)
            buf += _enc_atom(x.node)
            buf += _pack_ref_words[1](x.creation)
            buf += _pack_ref_words[n](*x.ids)
        except (struct.error, _Unsupported):
            raise _Unsupported(x, "reference needs an atom node, 32-bit creation and ids") from None
    elif t is ImproperList:
        items, tail = x.items, x.tail
        while type(tail) is ImproperList:  # [1 | [2 | 3]] is [1, 2 | 3], as OTP encodes it
            items = items + tail.items
            tail = tail.tail
        buf += _pack_u32(LIST_EXT, len(items))
        try:
            for item in items:
                _enc(item, buf)
            _enc(tail, buf)
        except _Unsupported as exc:
            exc.trail.append(x)
            raise
    elif t is Port:
        try:
            if 0 <= x.id < _V4_PORT_FROM:
                buf.append(NEW_PORT_EXT)
                buf += _enc_atom(x.node)
                buf += _pack_u32x2(x.id, x.creation)
            else:
                buf.append(V4_PORT_EXT)
                buf += _enc_atom(x.node)
                buf += _pack_u64_u32(x.id, x.creation)
        except (struct.error, _Unsupported):
            raise _Unsupported(
                x, "port needs an atom node, 64-bit id and 32-bit creation"
            ) from None
    elif t is BitString:
        data, bits = x.data, x.bits
        if bits == 8:
            _enc_binary(data, buf)
            return
        buf += _pack_bits(BIT_BINARY_EXT, len(data), bits)
        buf += data[:-1]
        buf.append(data[-1] & (0xFF00 >> bits) & 0xFF)
    elif t is Fun:
        buf.append(NEW_FUN_EXT)
        buf += x.raw
    elif t is Export:
        buf.append(EXPORT_EXT)
        buf += x.raw
    elif t is bytearray or t is memoryview:
        _enc_binary(x, buf)
    # Subclasses of the builtin types (IntEnum, namedtuple, OrderedDict, ...).
    elif isinstance(x, Atom):
        buf += _enc_atom(x)
    elif isinstance(x, int):
        _enc(int(x), buf)
    elif isinstance(x, float):
        _enc(float(x), buf)
    elif isinstance(x, str):
        _enc(str(x), buf)
    elif isinstance(x, (bytes, bytearray)):
        _enc_binary(x, buf)
    elif isinstance(x, (tuple, list, dict)):
        try:
            _enc((tuple if isinstance(x, tuple) else list if isinstance(x, list) else dict)(x), buf)
        except _Unsupported as exc:
            exc.trail.append(x)
            raise
    else:
        raise _Unsupported(x, f"cannot encode {t.__name__} value {x!r:.80}")


def _locate(parent: Any, child: Any) -> str:
    """Where ``child`` sits inside ``parent``, for error messages."""
    if isinstance(parent, dict):
        for key, value in parent.items():
            if key is child:
                return f" key {key!r:.40}"
            if value is child:
                return f"[{key!r:.40}]"
    elif isinstance(parent, ImproperList):
        if parent.tail is child:
            return ".tail"
        parent = parent.items
    if isinstance(parent, (tuple, list)):
        for i, item in enumerate(parent):
            if item is child:
                return f"[{i}]"
    return ""


def encode(term: Any) -> bytes:
    """Encode ``term`` as ``b"\\x83" + body``, byte-identical to OTP's term_to_binary."""
    buf = bytearray(b"\x83")
    _encode_into(term, buf)
    return bytes(buf)


def encode_frame(control: Any, message: Any, absent: Any) -> bytearray:
    """A whole distribution frame: ``len:32, 'p', 131 control [, 131 message]``.

    ``message is absent`` leaves the payload out. Built in one buffer (no joins); errors are
    ``encode``'s, for whichever of the two terms failed.
    """
    buf = bytearray(b"\0\0\0\0p\x83")
    _encode_into(control, buf)
    if message is not absent:
        buf.append(VERSION)
        _encode_into(message, buf)
    buf[0:4] = (len(buf) - 4).to_bytes(4, "big")
    return buf


def _encode_into(term: Any, buf: bytearray) -> None:
    """Append ``term``'s encoding to ``buf``; EncodeError says where in ``term`` it failed."""
    try:
        _enc(term, buf)
    except _Unsupported as exc:
        chain = [*reversed(exc.trail), exc.value]
        where = "".join(_locate(p, c) for p, c in itertools.pairwise(chain))
        raise EncodeError(
            f"{exc.problem} (at {'term' + where if where else 'top level'})"
        ) from None
    except RecursionError:
        raise EncodeError(
            "term is nested deeper than Python's recursion limit (or contains itself)"
        ) from None
    except Exception as exc:  # backstop, e.g. a length beyond 32 bits (struct.error)
        raise EncodeError(f"cannot encode term ({type(exc).__name__}: {exc})") from exc


def make_export(module: str, function: str, arity: int) -> Export:
    """Build ``fun Module:Function/Arity`` as an Export (EXPORT_EXT bytes, like OTP's)."""
    if type(arity) is not int or not 0 <= arity <= 255:
        raise EncodeError(f"export arity must be an int in 0..255, got {arity!r}")
    try:
        raw = _enc_atom(module) + _enc_atom(function) + _SMALL_INTS[arity]
    except _Unsupported as exc:
        raise EncodeError(f"bad export {module!r}:{function!r}: {exc.problem}") from None
    return Export(Atom(module), Atom(function), arity, raw)
