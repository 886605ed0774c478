"""The BEAM node's distribution and peer discovery, as the Erlang terms ``stellarops up`` writes
into its ``sys.config`` (placeholders of ``rel/sys.config.src``): the kernel's listen address and
port range, and the ``stellar`` app's ``cluster`` entry (read by ``stellar_cluster``, checked by
``stellar_config:validate_cluster/2``). Pure: settings in, text out."""

from __future__ import annotations

import ipaddress
from typing import Final

from py_nodes.settings import ClusterSettings

__all__ = ["LOOPBACK_DIST", "kernel_dist_config", "stellar_cluster_config"]

LOOPBACK_DIST: Final = "{inet_dist_use_interface, {127,0,0,1}}"


def _ip_tuple(address: str) -> str:
    return "{" + ",".join(str(octet) for octet in ipaddress.IPv4Address(address).packed) + "}"


def kernel_dist_config(cluster: ClusterSettings) -> str:
    """The kernel entries: where the distribution listens, and on which ports when fixed."""
    entries = [f"{{inet_dist_use_interface, {_ip_tuple(cluster.dist_interface)}}}"]
    if cluster.dist_ports is not None:
        low, high = cluster.dist_ports
        entries += [f"{{inet_dist_listen_min, {low}}}", f"{{inet_dist_listen_max, {high}}}"]
    return ", ".join(entries)


def stellar_cluster_config(cluster: ClusterSettings) -> str:
    """The ``stellar`` app's ``cluster`` entry; empty without peers or a DNS name (the app's
    default: no peers). Names and the DNS name are checked by the settings (only letters,
    digits, ``-_.@``), so quoting them is enough."""
    default = ClusterSettings()
    quorum = (cluster.size, cluster.failure_ms) != (default.size, default.failure_ms)
    if not cluster.peers and cluster.dns is None and not quorum:
        return ""
    fields = ["peers => [" + ", ".join(f"'{peer}'" for peer in cluster.peers) + "]"]
    if cluster.dns is not None:
        fields.append(f'dns => "{cluster.dns}"')
    fields.append(f"poll_ms => {max(100, round(cluster.dns_poll_s * 1000))}")
    if quorum:
        fields.append(f"size => {cluster.size}, failure_ms => {cluster.failure_ms}")
    return "{cluster, #{" + ", ".join(fields) + "}}"
