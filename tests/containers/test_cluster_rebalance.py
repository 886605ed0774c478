"""Rebalancing and fast re-placement across three `stellar` hosts: three containers of the image
on a private network of their own (each with its own address, sharing the DNS alias whose A
records are the three of them), one PostgreSQL, 3,000 demo satellites, an expected cluster size
of 3 (STELLAROPS_CLUSTER_SIZE: the quorum is two).

Checked with real containers: the satellites spread over the three BEAM nodes within 10 % of an
even share (the database's owner seeds them all; rebalancing moves them); `podman kill` of one
host (SIGKILL: a host lost) → every satellite runs on the two others within 3 s (measured from
the kill to all running, printed); the host started again (a new address: a new node name)
→ the satellites spread over the three within 10 % again, each once.

The bounds polled are generous (2 shared cores, other work on them): the 3 s of the issue is the
figure measured and printed (with whether it was met), not an assertion that a loaded machine
could fail; bench/cluster_bench.py checks it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from cluster_support import BUILD_TIMEOUT_S, ClusterHosts, build_image
from compose_support import wait_for

HOSTS = 3
SATELLITES = 3000
# Three hosts up, 3,000 satellites seeded and spread (2 shared cores): ~30 s on a quiet machine,
# 200 s at load average 20-36; at 30-40 up's own start took 5.5 min (Python nodes slower than
# their 30 s ping timeout at first, started again), so 360 s was missed once.
FORM_TIMEOUT_S = 600
REPLACE_BOUND_S = 3.0  # the bound: a lost host's satellites run elsewhere within 3 s
TAKEOVER_TIMEOUT_S = 60  # the bound asserted (the figure is printed against the 3 s)
# The returning host's own start (BEAM, four Python nodes) and the rounds: 11-32 s at load 10-36,
# 161 s once at load 35 (the container drill of test_cluster_hosts starting beside it).
REBALANCE_TIMEOUT_S = 360
WORTH_SEEING = ('"level":"warning"', '"level":"error"', "rebalancing", "taking over", "quorum")
# What a host's BEAM node says of itself when the drill fails (through cluster.beam_eval): quorum,
# rebalancing counts, the catalog's entries by owner and status, the store's lease and route, the
# queues of the busy servers, processes suspended (on a busy port, or waiting for thread progress).
DIAGNOSTICS = """
    Count = fun(F, L) -> lists:foldl(fun(X, A) -> maps:update_with(F(X), fun(N) -> N + 1 end, 1, A) end, #{}, L) end,
    Queue = fun(Name) -> case whereis(Name) of undefined -> none; P -> element(2, process_info(P, message_queue_len)) end end,
    #{quorum => maps:with([seen, has_quorum, peers, losses, failures], stellar_cluster:quorum()),
      rebalance => stellar_catalog:rebalance_info(),
      entries => Count(fun(#{owner := O, status := S}) -> {O, S} end, stellar_catalog:entries()),
      store => maps:with([owner, route, owner_node, buffered], stellar_store:status()),
      queues => [{N, Queue(N)} || N <- [stellar_catalog, stellar_store, stellar_ticks, stellar_cluster]],
      suspended => length([P || P <- processes(), process_info(P, status) =:= {status, suspended}]),
      run_queue => erlang:statistics(run_queue)}"""


class Cluster(ClusterHosts):
    """3,000 demo satellites, a slower tick and only the roles this test needs (no orbital or
    scheduler node): 3,000 actors and their telemetry on 2 shared cores."""

    def host_args(self, i: int) -> list[str]:
        return ["-e", "STELLAROPS_CLUSTER_DNS_POLL_S=1", "-e", f"STELLAROPS_DEMO_SATELLITES={SATELLITES}",
                "-e", "STELLAROPS_TICK_S=5", "-e", "STELLAROPS_ROLES=sats=2,store=1,gateway=1"]  # fmt: skip


def owned(cluster: Cluster, via: str) -> dict[str, int]:
    """BEAM node (up) -> satellites it owns (runs the shadow of), as GET /api/nodes says."""
    items = cluster.get_ok(via, "/api/nodes")["items"]
    return {
        n["name"]: n["satellites"] for n in items if n["role"] == "beam" and n["status"] == "up"
    }


def running(cluster: Cluster, via: str) -> int:
    return int(cluster.get_ok(via, "/api/satellites?status=running&limit=1")["total"])


def spread_within(counts: dict[str, int], nodes: set[str], tolerance: float = 0.10) -> bool:
    share = SATELLITES / len(nodes)
    return (
        set(counts) == nodes
        and sum(counts.values()) == SATELLITES
        and all(abs(counts[n] - share) <= tolerance * share for n in nodes)
    )


def diagnose(cluster: Cluster, names: list[str]) -> None:
    """Each running host's own view (see DIAGNOSTICS), printed (pytest shows it on a failure)."""
    for name in names:
        if cluster.running(name):
            print(f"---- {name}: {cluster.beam_eval(name, DIAGNOSTICS)}")


def once_everywhere(cluster: Cluster, via: str) -> bool:
    """Every satellite once: each sats node's actors sum to the total, and the list has no id twice."""
    sats = sum(
        n["satellites"] for n in cluster.get_ok(via, "/api/nodes")["items"] if n["role"] == "sats"
    )
    ids: list[str] = []
    for offset in range(0, SATELLITES, 1000):
        ids += [
            s["id"]
            for s in cluster.get_ok(via, f"/api/satellites?limit=1000&offset={offset}")["items"]
        ]
    return sats == SATELLITES and len(ids) == len(set(ids)) == SATELLITES


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    build_image()
    cluster = Cluster(
        prefix=f"stellaropsrb{os.getpid()}",
        secrets_dir=tmp_path_factory.mktemp("rebalance-secrets"),
    )
    try:
        cluster.up()
        yield cluster
    finally:
        for kind, name in cluster.made:
            if kind == "container" and name.rsplit("-", 1)[-1].startswith("s"):
                lines = cluster.logs(name).splitlines()
                said = [line for line in lines if any(w in line for w in WORTH_SEEING)][-60:]
                print(f"---- {name} (warnings, moves)\n" + "\n".join(said))
                print(f"---- {name} (last lines)\n" + "\n".join(lines[-30:]))
        cluster.remove_everything()


@pytest.mark.timeout(BUILD_TIMEOUT_S + 20 * 60)
def test_spread_kill_replace_within_3_s_and_rebalance_on_return(cluster: Cluster) -> None:
    names = [cluster.host(i) for i in range(1, HOSTS + 1)]
    try:
        drill(cluster, names)
    except AssertionError:
        diagnose(cluster, names)
        raise


def drill(cluster: Cluster, names: list[str]) -> None:
    beams = {name: f"stellar@{cluster.ip(name)}" for name in names}
    everyone = set(beams.values())
    started = time.monotonic()

    # Formed and spread: the owner seeded all 3,000; moves bring each node within 10 %.
    first = names[0]
    wait_for("3,000 satellites spread over the three within 10 %",
             lambda: cluster.assert_running(names) or (True if spread_within(owned(cluster, first), everyone) and running(cluster, first) == SATELLITES else None),
             FORM_TIMEOUT_S, 2)  # fmt: skip
    spread = owned(cluster, first)
    assert once_everywhere(cluster, first)
    formed_s = round(time.monotonic() - started, 1)

    # A host lost: kill -9 of its container. Its satellites must run on the others within 3 s.
    victim = names[1]
    survivors = [n for n in names if n != victim]
    alive = {beams[n] for n in survivors}
    via = survivors[0]
    killed_at = time.monotonic()
    cluster.cli("kill", victim)

    taken: list[float] = []  # when the survivors owned them all (shadows started, placing)

    def replaced() -> float | None:
        cluster.assert_running(survivors)
        counts = owned(cluster, via)
        now = time.monotonic() - killed_at
        if set(counts) != alive or sum(counts.values()) != SATELLITES:
            return None
        taken.append(now)
        return now if running(cluster, via) == SATELLITES else None

    replaced_s = round(
        wait_for(
            "the lost host's satellites running on the others", replaced, TAKEOVER_TIMEOUT_S, 0.1
        ),
        2,
    )
    assert once_everywhere(cluster, via)
    assert f"cluster: node {beams[victim]} left" in cluster.logs(via)

    # The host comes back (a new address, so a new node name): it gets its share again.
    cluster.cli("start", victim)
    beams[victim] = f"stellar@{cluster.ip(victim)}"
    everyone = set(beams.values())
    back_at = time.monotonic()
    wait_for("spread over the three again within 10 %",
             lambda: cluster.assert_running(names) or (True if spread_within(owned(cluster, via), everyone) and running(cluster, via) == SATELLITES else None),
             REBALANCE_TIMEOUT_S, 2)  # fmt: skip
    rebalanced_s = round(time.monotonic() - back_at, 1)
    final = owned(cluster, via)
    assert once_everywhere(cluster, via)
    assert "rebalancing: moving" in cluster.logs(via) or "rebalancing: moving" in cluster.logs(
        survivors[1]
    )
    print(
        f"{HOSTS} hosts, {SATELLITES} satellites: spread {sorted(spread.values())} ({formed_s} s to form and spread); "
        f"kill -> owned by the others in {taken[0]:.2f} s, all running in {replaced_s} s "
        f"(the issue's {REPLACE_BOUND_S:.0f} s: {'met' if replaced_s <= REPLACE_BOUND_S else 'NOT met'}); host back -> {sorted(final.values())} after {rebalanced_s} s"
    )
