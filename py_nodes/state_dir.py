"""The state folder (``STELLAROPS_HOME``, default ``./.stellarops``) and the secrets in it.

The cookie lives in ``$STELLAROPS_HOME/cookie`` (0600, generated on first run) unless
``STELLAROPS_COOKIE`` is set. Erlang nodes read it from ``erlang-home/.erlang.cookie`` (0400):
started with ``HOME`` pointing there, they never need it on a command line.
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

__all__ = ["StateDir"]

_COOKIE_ALPHABET = string.ascii_letters + string.digits


class StateDir:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(os.environ.get("STELLAROPS_HOME") or Path.cwd() / ".stellarops")
        self.cookie_file = self.root / "cookie"
        self.erlang_home = self.root / "erlang-home"

    def prepare(self) -> bytes:
        """Create the folders and the cookie if needed; return the cookie."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        cookie = self.cookie()
        self.erlang_home.mkdir(exist_ok=True)
        self.erlang_home.chmod(0o700)
        erlang_cookie = self.erlang_home / ".erlang.cookie"
        if not erlang_cookie.exists() or erlang_cookie.read_bytes() != cookie:
            erlang_cookie.unlink(missing_ok=True)
            fd = os.open(erlang_cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "wb") as f:
                f.write(cookie)
        return cookie

    def cookie(self) -> bytes:
        """``STELLAROPS_COOKIE`` if set, else the cookie file (created on first use)."""
        from_env = os.environ.get("STELLAROPS_COOKIE", "").strip()
        if from_env:
            return from_env.encode()
        if not self.cookie_file.exists():
            value = "".join(secrets.choice(_COOKIE_ALPHABET) for _ in range(32))
            fd = os.open(self.cookie_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value)
        return self.cookie_file.read_bytes().strip()
