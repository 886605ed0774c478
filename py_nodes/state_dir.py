"""The state folder (``STELLAROPS_HOME``, default ``./.stellarops``): its permissions, the secrets
in it, and the lock that makes one ``stellarops up`` its owner.

Permissions are decided here and nowhere else (the shell scripts call ``python -m
py_nodes.state_dir prepare``): the owner has rwx; group and others may neither list nor read nor
write. Traverse bits (x) that are already there are kept: as root, the embedded PostgreSQL runs as
its own system user and needs o+x on the folder to reach its data (``py_nodes/db/server.py`` adds
it, and only ever adds it). Removing it under a running server makes PostgreSQL PANIC at its next
checkpoint, so nothing here ever removes a bit other than read/write for group and others.

The cookie lives in ``$STELLAROPS_HOME/cookie`` (0600, generated on first use) unless
``STELLAROPS_COOKIE`` is set. Erlang nodes read it from ``erlang-home/.erlang.cookie`` (0400):
started with ``HOME`` pointing there, they never need it on a command line. Both files are
written to a temporary name first and then linked or renamed into place, so commands started
together (``stellarops status`` while ``stellarops up`` starts) all get the same cookie.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
import string
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from py_nodes.settings import SettingsError
from py_nodes.settings import load as load_settings

__all__ = ["AlreadyRunning", "StateDir", "StateDirError", "folder_mode"]

_COOKIE_ALPHABET: Final = string.ascii_letters + string.digits
_COOKIE_CHARS: Final = 32
_NO_SHARING: Final = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH


class StateDirError(Exception):
    """The state folder or a file in it cannot be used; the message says what to do."""


class AlreadyRunning(StateDirError):
    """Another ``stellarops up`` owns this state folder (running, or still stopping)."""

    def __init__(self, root: Path, pid: int | None, node: str | None) -> None:
        self.pid, self.node = pid, node
        who = f"pid {pid if pid is not None else '?'}, node {node or '?'}"
        super().__init__(f"already running: {who} (state folder {root}); stop it first, or use another STELLAROPS_HOME")


def folder_mode(current: int) -> int:
    """The mode the state folder gets, from its current mode: u=rwx, no read or write for group
    and others, and the traverse bits it already has (the embedded PostgreSQL's user needs o+x)."""
    return (stat.S_IMODE(current) | stat.S_IRWXU) & ~_NO_SHARING


class StateDir:
    """The folder ``root``; ``env_cookie`` is ``STELLAROPS_COOKIE`` (None: the cookie file)."""

    def __init__(self, root: Path, env_cookie: bytes | None = None) -> None:
        self.root = root
        self.env_cookie = env_cookie
        self.cookie_file = self.root / "cookie"
        self.erlang_home = self.root / "erlang-home"
        self.lock_file = self.root / "up.lock"
        self.status_file = self.root / "up-status.json"

    def ensure_root(self) -> None:
        """Create the folder if needed and give it its mode (see ``folder_mode``)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = self.root.stat().st_mode
        if folder_mode(mode) != stat.S_IMODE(mode):
            self.root.chmod(folder_mode(mode))

    def prepare(self) -> bytes:
        """Create the folders and the cookie if needed; return the cookie."""
        self.ensure_root()
        cookie = self.cookie()
        self.erlang_home.mkdir(mode=0o700, exist_ok=True)
        self.erlang_home.chmod(0o700)  # only we start Erlang nodes with this HOME
        erlang_cookie = self.erlang_home / ".erlang.cookie"
        with contextlib.suppress(FileNotFoundError):
            if erlang_cookie.read_bytes() == cookie:
                return cookie
        # Replaced in one rename: an Erlang node starting now reads the old file or the new one.
        _write_new(erlang_cookie, cookie, 0o400, replace=True)
        return cookie

    def cookie(self) -> bytes:
        """``STELLAROPS_COOKIE`` if set, else the cookie file (created on first use)."""
        if self.env_cookie:
            return self.env_cookie
        if not self.cookie_file.exists():
            self.ensure_root()
            value = "".join(secrets.choice(_COOKIE_ALPHABET) for _ in range(_COOKIE_CHARS))
            # link() fails if another process made the file first: then we use theirs.
            _write_new(self.cookie_file, value.encode(), 0o600, replace=False)
        mode = stat.S_IMODE(self.cookie_file.stat().st_mode)
        if mode & 0o077:
            self.cookie_file.chmod(0o600)
        cookie = self.cookie_file.read_bytes().strip()
        if not cookie:
            raise StateDirError(f"the cookie file {self.cookie_file} is empty: remove it (a new cookie is made) or write the cookie into it")
        return cookie

    @contextlib.contextmanager
    def owner_lock(self, node: str) -> Iterator[None]:
        """Hold the state folder for one ``stellarops up`` (pid and node written in the lock file).

        The lock is an flock on an open file: the kernel drops it when the process ends, however it
        ends, so a crashed owner never blocks the next one. Raises ``AlreadyRunning`` at once if held.
        """
        self.ensure_root()
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid, holder = self._lock_holder(fd)
                raise AlreadyRunning(self.root, pid, holder) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {node}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _lock_holder(self, fd: int) -> tuple[int | None, str | None]:
        """The pid and node the owner wrote (it writes right after locking: wait a little for it)."""
        deadline = time.monotonic() + 2.0
        while True:
            fields = os.pread(fd, 4096, 0).decode(errors="replace").split()
            if len(fields) == 2 and fields[0].isdigit():
                return int(fields[0]), fields[1]
            if time.monotonic() > deadline:
                return None, None
            time.sleep(0.05)


def _write_new(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Write ``data`` to a temporary file in ``path``'s folder, then rename it over ``path``
    (``replace``) or link it there, keeping an existing file (not ``replace``)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
        if replace:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def main(argv: list[str]) -> int:
    """``python -m py_nodes.state_dir prepare``: what the shell scripts run (never prints the cookie)."""
    if argv != ["prepare"]:
        print("usage: python -m py_nodes.state_dir prepare", file=sys.stderr)
        return 2
    try:
        node = load_settings().node
    except SettingsError as exc:
        print(f"stellarops: {exc}", file=sys.stderr)
        return 2
    state = StateDir(node.home, node.cookie)
    made = node.cookie is None and not state.cookie_file.exists()
    try:
        state.prepare()
    except (OSError, StateDirError) as exc:
        print(f"stellarops: cannot prepare the state folder {state.root}: {exc}", file=sys.stderr)
        return 1
    if made:
        print(f"created a secret cookie in {state.cookie_file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
