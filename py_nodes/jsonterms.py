"""Erlang terms (as erldist decodes them) to JSON-ready Python values, for the CLI and HTTP."""

from __future__ import annotations

from typing import Any

from py_nodes.erldist import Atom, BitString, ImproperList, Pid, Port, Reference

__all__ = ["to_json"]

JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]


def to_json(term: Any) -> JsonValue:
    """Atoms and UTF-8 binaries become strings, tuples become lists, pids their text form."""
    # Exact types first (every SSE event's data and every listed satellite comes through here):
    # one set lookup for the common leaves, values converted in the comprehension without a call.
    kind = type(term)
    if kind in _AS_IS:
        return term  # type: ignore[no-any-return]
    if kind is Atom:
        return str(term)
    if kind is bytes:
        return term.decode("utf-8", errors="replace")  # type: ignore[no-any-return]
    if isinstance(term, dict):
        return {
            (str(k) if type(k) is Atom else _key(k)): (v if type(v) in _AS_IS else to_json(v))
            for k, v in term.items()
        }
    if isinstance(term, list | tuple):
        return [item if type(item) in _AS_IS else to_json(item) for item in term]
    return _other(term)


_AS_IS = frozenset({int, float, bool, str, type(None)})


def _other(term: Any) -> JsonValue:
    """Subclasses of the leaf types above, and the terms that have no JSON type of their own."""
    if term is None or isinstance(term, bool | int | float):
        return term
    if isinstance(term, str):
        return str(term)
    if isinstance(term, bytes):
        return term.decode("utf-8", errors="replace")
    if isinstance(term, ImproperList):
        return [*(to_json(item) for item in term.items), to_json(term.tail)]
    if isinstance(term, Pid | Reference | Port):
        return str(term)
    if isinstance(term, BitString):
        return term.data.hex()
    return repr(term)


def _key(key: Any) -> str:
    value = to_json(key)
    return value if isinstance(value, str) else str(value)


