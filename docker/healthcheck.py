#!/usr/bin/env python3
"""The image's HEALTHCHECK: exit 0 when this container's ``stellarops up`` is ready.

Ready means ``up`` has written the cluster into ``$STELLAROPS_HOME/up-status.json`` (every Python
node up, satellites restored) and, when this node runs a gateway, the gateway's ``/healthz``
answers 200. The runner has no curl: this uses the venv's Python and the settings module.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from urllib.parse import urlsplit

from py_nodes.settings import SettingsError, load

TIMEOUT_S = 3.0


def check() -> str | None:
    """None when healthy, else why not (one line)."""
    try:
        home = load().node.home
    except SettingsError as exc:
        return str(exc)
    try:
        status = json.loads((home / "up-status.json").read_text())
    except (OSError, ValueError) as exc:
        return f"stellarops up has not reported yet ({exc})"
    cluster = status.get("cluster")
    if not isinstance(cluster, dict):
        return "stellarops up is starting (no cluster in up-status.json yet)"
    gateway = cluster.get("gateway")
    if not isinstance(gateway, dict):
        return None  # no gateway role on this node: up's readiness is the health
    parts = urlsplit(str(gateway.get("url")))
    host = parts.hostname if parts.hostname not in (None, "", "0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host}:{gateway.get('port')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except OSError as exc:
        return f"{url}: {exc}"


if __name__ == "__main__":
    problem = check()
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
    sys.exit(0 if problem is None else 1)
