"""Python types for Erlang terms that have no native Python equivalent.

The mapping (see DESIGN.md): atom -> Atom (``true``/``false`` -> bool, ``undefined`` -> None),
binary -> bytes, bitstring -> BitString, tuple/list/map -> tuple/list/dict,
improper list -> ImproperList, pid/reference/port -> Pid/Reference/Port, fun/export -> opaque
Fun/Export objects that encode back to the exact bytes they came from.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Atom", "BitString", "Export", "Fun", "ImproperList", "Pid", "Port", "Reference"]


class Atom(str):
    """An Erlang atom. A ``str`` subclass so it compares equal to its name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


class ImproperList:
    """A list whose tail is not ``[]``, e.g. ``[alias | Ref]`` (gen_server call tags)."""

    __slots__ = ("items", "tail")
    __hash__ = None  # type: ignore[assignment]  # mutable like list

    def __init__(self, items: list[Any], tail: Any) -> None:
        if not items:
            raise ValueError("ImproperList needs at least one item before the tail")
        if isinstance(tail, list):
            raise ValueError("ImproperList tail must not be a list; use a proper list instead")
        self.items = items
        self.tail = tail

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ImproperList)
            and self.items == other.items
            and self.tail == other.tail
        )

    def __repr__(self) -> str:
        return f"ImproperList({self.items!r}, {self.tail!r})"


class BitString:
    """A binary whose last byte uses only ``bits`` (1..8) high-order bits."""

    __slots__ = ("bits", "data")

    def __init__(self, data: bytes, bits: int) -> None:
        if not data or not 1 <= bits <= 8:
            raise ValueError("BitString needs non-empty data and 1..8 bits in the last byte")
        self.data = bytes(data)
        self.bits = bits

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BitString) and self.data == other.data and self.bits == other.bits

    def __hash__(self) -> int:
        return hash((BitString, self.data, self.bits))

    def __repr__(self) -> str:
        return f"BitString({self.data!r}, {self.bits})"


class Pid:
    """An Erlang process identifier: node, id, serial, creation (NEW_PID_EXT)."""

    __slots__ = ("_hash", "creation", "encoded", "id", "node", "serial")

    def __init__(self, node: Atom, id: int, serial: int, creation: int) -> None:
        self.node = node
        self.id = id
        self.serial = serial
        self.creation = creation
        self._hash = hash((node, id, serial, creation))
        # Its external term format, kept by the codec at its first encoding (a pid is a value;
        # a sats node sends each shadow's pid every second: ~2 % of a core at 100,000).
        self.encoded: bytes | None = None

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is Pid
            and self.id == other.id
            and self.serial == other.serial
            and self.node == other.node
            and self.creation == other.creation
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Pid({str(self.node)!r}, {self.id}, {self.serial}, {self.creation})"

    def __str__(self) -> str:
        return f"<{self.node}.{self.id}.{self.serial}>"


class Reference:
    """An Erlang reference: node, creation and 1..5 32-bit id words (NEWER_REFERENCE_EXT)."""

    __slots__ = ("_hash", "creation", "ids", "node")

    def __init__(self, node: Atom, creation: int, ids: tuple[int, ...]) -> None:
        self.node = node
        self.creation = creation
        self.ids = tuple(ids)
        self._hash = hash((node, creation, self.ids))

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is Reference
            and self.ids == other.ids
            and self.node == other.node
            and self.creation == other.creation
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Reference({str(self.node)!r}, {self.creation}, {self.ids!r})"

    def __str__(self) -> str:
        return "#Ref<" + str(self.node) + "." + ".".join(str(i) for i in reversed(self.ids)) + ">"


class Port:
    """An Erlang port identifier (NEW_PORT_EXT, or V4_PORT_EXT for ids above 32 bits)."""

    __slots__ = ("creation", "id", "node")

    def __init__(self, node: Atom, id: int, creation: int) -> None:
        self.node = node
        self.id = id
        self.creation = creation

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is Port
            and self.id == other.id
            and self.node == other.node
            and self.creation == other.creation
        )

    def __hash__(self) -> int:
        return hash((Port, self.node, self.id, self.creation))

    def __repr__(self) -> str:
        return f"Port({str(self.node)!r}, {self.id}, {self.creation})"

    def __str__(self) -> str:
        return f"#Port<{self.node}.{self.id}>"


class Fun:
    """An Erlang fun, kept opaque: ``raw`` is the NEW_FUN_EXT body after the tag byte."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = bytes(raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fun) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((Fun, self.raw))

    def __repr__(self) -> str:
        return f"Fun(<{len(self.raw)} bytes>)"


class Export:
    """An external fun ``fun M:F/A``; ``raw`` is the EXPORT_EXT body after the tag byte."""

    __slots__ = ("arity", "function", "module", "raw")

    def __init__(self, module: Atom, function: Atom, arity: int, raw: bytes) -> None:
        self.module = module
        self.function = function
        self.arity = arity
        self.raw = bytes(raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Export) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((Export, self.raw))

    def __repr__(self) -> str:
        return f"Export(fun {self.module}:{self.function}/{self.arity})"
