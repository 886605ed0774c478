"""TLS for the distribution, as OTP's ``inet_tls_dist`` speaks it: the whole connection (handshake
and frames) runs inside TLS; epmd stays plain TCP. Both sides present a certificate and verify
the other's against the cluster's CA (``verify_peer`` + ``fail_if_no_peer_cert``). Node names
hold addresses that may change (pod IPs), so no host name is checked: any certificate the CA
signed is a cluster member, as with ``{server_name_indication, disable}`` on the Erlang side.

``DistTls`` loads its files once (a bad file fails at ``Node`` construction, not at the first
connection) and hands out the two ``ssl.SSLContext``s.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DistTls"]


def _context(purpose: ssl._SSLMethod, cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(ca_file)
    context.check_hostname = False  # before verify_mode: a client context checks names by default
    context.verify_mode = ssl.CERT_REQUIRED  # a peer without a certificate the CA signed is refused
    return context


@dataclass(frozen=True)
class DistTls:
    """The certificate and key this node presents and the CA it trusts (PEM files)."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    server: ssl.SSLContext = field(init=False, repr=False, compare=False)
    client: ssl.SSLContext = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        files = (self.cert_file, self.key_file, self.ca_file)
        try:
            object.__setattr__(self, "server", _context(ssl.PROTOCOL_TLS_SERVER, *files))
            object.__setattr__(self, "client", _context(ssl.PROTOCOL_TLS_CLIENT, *files))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"distribution TLS: cannot load {', '.join(map(str, files))}: {exc}") from None

    @classmethod
    def from_dir(cls, folder: Path) -> DistTls:
        """``tls.crt``, ``tls.key`` and ``ca.crt`` in ``folder`` (a Kubernetes TLS secret's names)."""
        return cls(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")
