"""The BEAM node's distribution and peer discovery, as the Erlang terms ``stellarops up`` writes
into its ``sys.config`` (placeholders of ``rel/sys.config.src``): the kernel's listen address and
port range, and the ``stellar`` app's ``cluster`` entry (read by ``stellar_cluster``, checked by
``stellar_config:validate_cluster/2``) and ``py_nodes_local``; with TLS, the ``ssl_dist_optfile``
the node is started with (``-proto_dist inet_tls``). Pure: settings in, text out."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Final

from py_nodes.settings import ClusterSettings

__all__ = [
    "LOOPBACK_DIST",
    "kernel_dist_config",
    "py_nodes_local_config",
    "ssl_dist_optfile",
    "stellar_cluster_config",
    "tls_dist_args",
]

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


def py_nodes_local_config(cluster: ClusterSettings) -> str:
    """The ``stellar`` app's ``py_nodes_local`` entry (``STELLAROPS_PY_NODES_LOCAL``)."""
    return f"{{py_nodes_local, {'true' if cluster.py_nodes_local else 'false'}}}"


def _erl_string(path: Path) -> str:
    """A path as an Erlang string literal (backslashes and quotes escaped)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


# The client's host name check, made to accept any name: inet_tls_dist checks the node's host (an
# address) against the certificate, and public_key drops IP references before it calls match_fun
# when the certificate has no subjectAltName, hence fqdn_fun too.
_ANY_HOST: Final = '[{fqdn_fun, fun(_) -> "cluster-member" end}, {match_fun, fun(_, _) -> true end}]'


def ssl_dist_optfile(tls_dir: Path) -> str:
    """The options of ``inet_tls_dist`` (``-ssl_dist_optfile``, read as one Erlang expression) for
    the certificates in ``tls_dir``: both sides present their certificate and verify the other's
    against the cluster's CA; a server refuses a client without one. Node names hold addresses
    that change (pod IPs), so the client checks no host name (``_ANY_HOST``): every certificate
    the CA signed is a cluster member."""
    files = (
        f"{{certfile, {_erl_string(tls_dir / 'tls.crt')}}}, {{keyfile, {_erl_string(tls_dir / 'tls.key')}}}, "
        f"{{cacertfile, {_erl_string(tls_dir / 'ca.crt')}}}, {{verify, verify_peer}}, {{secure_renegotiate, true}}, "
        "{versions, ['tlsv1.3', 'tlsv1.2']}"
    )
    return (
        "%% Written by stellarops up from STELLAROPS_DIST_TLS_DIR (py_nodes/dist_config.py).\n"
        f"[{{server, [{files}, {{fail_if_no_peer_cert, true}}]}},\n"
        f" {{client, [{files}, {{customize_hostname_check, {_ANY_HOST}}}]}}].\n"
    )


def tls_dist_args(optfile: Path) -> list[str]:
    """The ``erl`` arguments that put the distribution on TLS with ``optfile``."""
    return ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile)]
