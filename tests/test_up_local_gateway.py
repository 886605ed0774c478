"""``stellarops up`` reports only its own gateway: in a cluster (Kubernetes: gateway-only and
orbital-only pods beside the control plane) the node list holds the peers' gateways too, and an
orbital-only node's health check must not probe another pod's gateway on its own loopback."""

from __future__ import annotations

from py_nodes.erldist.terms import Atom
from py_nodes.up import local_gateways


def node(name: str, role: str) -> dict[Atom, object]:
    return {Atom("name"): name, Atom("role"): role}


def test_only_the_gateways_named_after_this_host() -> None:
    nodes = [
        node("stellar@10.0.0.5", "beam"),
        node("stellar@10.0.0.6", "beam"),
        node("gateway1@10.0.0.5", "gateway"),
        node("orbital1@10.0.0.6", "orbital"),
    ]
    assert local_gateways(nodes, "10.0.0.6") == []  # the orbital-only node: no gateway of its own
    assert local_gateways(nodes, "10.0.0.5") == ["gateway1@10.0.0.5"]
    assert local_gateways([*nodes, node("gateway1@10.0.0.6", "gateway")], "10.0.0.6") == ["gateway1@10.0.0.6"]


def test_a_host_is_matched_whole() -> None:
    assert local_gateways([node("gateway1@10.0.0.50", "gateway")], "10.0.0.5") == []


def test_gateways_on_loopback_are_told_apart_by_their_beam_node() -> None:
    """With Python nodes on loopback (STELLAROPS_PY_NODES_LOCAL) every host's are @127.0.0.1:
    the row's ``beam`` says whose they are."""
    rows = [
        {**node(f"gateway1-10-0-0-{n}@127.0.0.1", "gateway"), Atom("beam"): Atom(f"stellar@10.0.0.{n}")} for n in (5, 6)
    ]
    assert local_gateways(rows, "10.0.0.6", "stellar@10.0.0.6") == ["gateway1-10-0-0-6@127.0.0.1"]
    assert local_gateways(rows, "10.0.0.7", "stellar@10.0.0.7") == []
