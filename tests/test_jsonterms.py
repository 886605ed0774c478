"""Erlang terms to JSON values."""

from __future__ import annotations

import json

from py_nodes.erldist import Atom, BitString, ImproperList, Pid, Reference
from py_nodes.jsonterms import to_json


def test_terms_become_plain_json() -> None:
    pid = Pid(Atom("a@h"), 5, 0, 1)
    term = {
        Atom("id"): b"sat-1",
        Atom("mode"): Atom("safe"),
        Atom("ok"): True,
        Atom("none"): None,
        Atom("pos"): (1.5, -2, 3),
        Atom("pid"): pid,
        Atom("ref"): Reference(Atom("a@h"), 1, (1, 2, 3)),
        Atom("tail"): ImproperList([1], Atom("x")),
        Atom("bits"): BitString(b"\xf0", 4),
        7: [b"\xff"],
    }
    got = to_json(term)
    assert got == {
        "id": "sat-1",
        "mode": "safe",
        "ok": True,
        "none": None,
        "pos": [1.5, -2, 3],
        "pid": "<a@h.5.0>",
        "ref": "#Ref<a@h.3.2.1>",
        "tail": [1, "x"],
        "bits": "f0",
        "7": ["\ufffd"],
    }
    json.dumps(got)


def test_atoms_become_plain_str_at_any_depth() -> None:
    """Keys and values are exact ``str``s (not Atom), in maps, lists and tuples at any depth;
    subclasses of the plain types (not the terms' own types) still convert."""

    class Level(int):
        pass

    got = to_json({Atom("a"): [Atom("x"), (Atom("y"), {Atom("z"): Atom("w")})], Atom("n"): Level(3)})
    assert got == {"a": ["x", ["y", {"z": "w"}]], "n": 3}
    assert isinstance(got, dict)
    inner = got["a"]
    strings = [*got, inner[0], inner[1][0], *inner[1][1], *inner[1][1].values()]
    assert strings == ["a", "n", "x", "y", "z", "w"] and all(type(s) is str for s in strings)
