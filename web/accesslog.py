"""The access log: one JSON line per request (``ts``, ``request_id``, ``method``, ``path``,
``route``, ``status``, ``duration_ms``, ``remote``, ``sat_id``), written in batches.

A request only appends a tuple to a buffer; a task formats and writes the buffer every
``flush_s`` (so logging costs the busy path a few microseconds, and one write per batch). More
than ``max_pending`` lines waiting (a stuck destination) are counted as lost, not buffered. A file
destination is rotated at ``max_bytes`` (one old file, ``.1``, is kept). Query strings are not
logged (the event stream accepts a token there). The file is private (0600: paths, addresses
and satellite ids are not for every local user), and so is a folder made for it (0700); the
default folder, ``$STELLAROPS_HOME/log``, is tightened to 0700 if it is looser (the state folder
itself is never changed here: its mode belongs to ``py_nodes.state_dir``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

__all__ = ["AccessLog"]

log = logging.getLogger("stellarops.web")

Line = tuple[float, str, str, str, str, int, float, str | None, str | None]
MAX_BYTES: Final = 50 << 20
QUOTED_MAX: Final = 4096
# One line; %-formatting of a constant template is a third cheaper than the f-string it replaced.
_LINE: Final = (
    '{"ts":"%s.%03dZ","level":"info","logger":"stellarops.web.access","request_id":"%s","method":"%s",'
    '"path":%s,"route":"%s","status":%d,"duration_ms":%.3f,"remote":%s%s}'
)


class AccessLog:
    def __init__(
        self,
        destination: str | None,
        *,
        flush_s: float = 0.05,
        max_pending: int = 100_000,
        max_bytes: int = MAX_BYTES,
        private_dir: Path | None = None,
    ) -> None:
        """``destination``: ``-`` for stdout, a file path, or None for no access log;
        ``private_dir``: a folder of ours (the state folder's log/) that is kept 0700."""
        self.destination = destination
        self.private_dir = private_dir
        self.flush_s = flush_s
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self.lost = 0
        self._pending: list[Line] = []
        self._file: IO[str] | None = None
        self._quoted: dict[str | None, str] = {}  # JSON of paths and remotes seen (few distinct)

    @property
    def enabled(self) -> bool:
        return self.destination is not None

    def record(self, line: Line) -> None:
        if self.destination is None:
            return
        if len(self._pending) >= self.max_pending:
            self.lost += 1
            return
        self._pending.append(line)

    def _stream(self) -> IO[str]:
        if self.destination == "-":
            return sys.stdout
        assert self.destination is not None
        if self._file is not None and self._file.tell() > self.max_bytes:
            self._file.close()
            self._file = None
            os.replace(self.destination, self.destination + ".1")
        if self._file is None:
            path = Path(self.destination)
            _private_folder(path.parent, self.private_dir)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(fd, 0o600)  # also a file made before by an older version (0644)
            self._file = os.fdopen(fd, "a", encoding="utf-8")  # kept open between batches
        return self._file

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        lines = []
        second, stamp = -1, ""
        quoted = self._quoted
        if len(quoted) > QUOTED_MAX:
            quoted.clear()
        for ts, request_id, method, path, route, status, seconds, remote, sat_id in pending:
            # Formatted by hand: only the path (and remote) can hold characters JSON must escape;
            # the other fields are checked tokens (ids, methods, our routes).
            whole = int(ts)
            if whole != second:
                second = whole
                stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            path_json = quoted.get(path) or quoted.setdefault(path, json.dumps(path))
            remote_json = quoted.get(remote) or quoted.setdefault(remote, json.dumps(remote))
            sat = "" if sat_id is None else f',"sat_id":"{sat_id}"'
            lines.append(_LINE % (stamp, (ts - whole) * 1000, request_id, method, path_json, route, status, seconds * 1000, remote_json, sat))
        try:
            stream = self._stream()
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except OSError as exc:
            self.lost += len(pending)
            log.warning("access log: cannot write to %s: %s", self.destination, exc)

    async def run(self) -> None:
        """Flush every ``flush_s`` until cancelled (then flush what is left)."""
        try:
            while True:
                await asyncio.sleep(self.flush_s)
                self.flush()
        finally:
            self.flush()
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None


def _private_folder(folder: Path, ours: Path | None) -> None:
    """Make ``folder`` (0700) if it is missing; tighten it if it is ``ours``."""
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is masked by the umask
        return
    if ours is not None and folder.resolve() == ours.resolve() and folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
