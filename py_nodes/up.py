"""``stellarops up`` (the main job) and ``stellarops status``.

``up`` runs the database (``DATABASE_URL``, else the embedded PostgreSQL under the state folder),
migrates it and seeds the demo constellation when it is empty; then starts the BEAM node (whose
``stellar`` app starts and supervises the Python nodes, the ``store`` node among them), waits until
every Python node is up and the satellites are restored from the database, prints how to reach
the cluster (the gateway's and the dashboard's URLs too, and the first time the admin token with a
dashboard sign-in link: it is generated into ``$STELLAROPS_HOME/admin-token``, mode 0600), and
runs until SIGINT/SIGTERM. A hidden control node talks to BEAM through ``rpc`` into the
``stellar`` facade.

- One owner per state folder: ``up`` holds ``$STELLAROPS_HOME/up.lock`` from before it touches
  anything until it has stopped everything; a second ``up`` exits 2 ("already running").
- The database is watched (``py_nodes/db/watch.py``): the embedded server is started again when
  it dies; an external one (``DATABASE_URL``) is only reported. ``$STELLAROPS_HOME/up-status.json``
  holds what ``stellarops status`` shows under ``database`` and, once the stack is ready, under
  ``cluster`` the node names and roles and the gateway's URL and port (for scripts and tests).
- Stop (SIGINT or SIGTERM): the BEAM node stops gracefully (its last checkpoint goes through the
  store node, so we first give a restarting database a few seconds), with it every Python node;
  then the embedded database. We say whether the final checkpoint was written, and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from py_nodes.db import (
    ApiTokens,
    Database,
    DatabaseUnavailable,
    DbError,
    EmbeddedServer,
    EmbeddedServerError,
    SeedReport,
    ValidationError,
    describe_target,
    ensure_admin_token,
    migrate,
    seed,
)
from py_nodes.db.watch import DatabaseHealth, EmbeddedWatch, ExternalWatch
from py_nodes.dist_config import (
    LOOPBACK_DIST,
    kernel_dist_config,
    py_nodes_local_config,
    ssl_dist_optfile,
    stellar_cluster_config,
    tls_dist_args,
)
from py_nodes.erldist import Atom, DistTls, EpmdAddress, Node, NodeDownError, RpcError, epmd
from py_nodes.jsonterms import to_json
from py_nodes.logs import console_line
from py_nodes.settings import Settings
from py_nodes.state_dir import StateDir

__all__ = ["UpError", "status", "up"]

ROOT = Path(__file__).resolve().parent.parent
DB_GRACE_AT_STOP_S = 10.0  # a restarting database gets this long to come back for the last checkpoint
BEAM_STOP_TIMEOUT_S = 60.0
# What stellar_store:terminate/2 logs about the final checkpoint (tests/test_up_faults.py checks them).
_CHECKPOINT_OK = b" at stop"
_CHECKPOINT_FAILED = b"final checkpoint failed"
SYS_CONFIG_SRC = ROOT / "rel" / "sys.config.src"  # the release's configuration: one source
# What sys.config.src uses and a caller may leave unset (up sets each from its settings).
SYS_CONFIG_DEFAULTS: Final = {"STELLAROPS_LOG_FORMAT": "text"}


class UpError(Exception):
    """The main job could not start; the message says why and what to do."""


def _epmd(settings: Settings) -> EpmdAddress:
    return EpmdAddress(settings.epmd.host, settings.epmd.port)


def _dist_tls(settings: Settings) -> DistTls | None:
    """The certificates of our own control nodes: with TLS distribution every node speaks TLS."""
    try:
        return None if settings.cluster.tls_dir is None else DistTls.from_dir(settings.cluster.tls_dir)
    except ValueError as exc:
        raise UpError(f"STELLAROPS_DIST_TLS_DIR: {exc}") from None


def write_ssl_dist_optfile(settings: Settings, folder: Path) -> list[str]:
    """With ``STELLAROPS_DIST_TLS_DIR``: its ``inet_tls_dist`` options written to
    ``folder/ssl_dist.conf`` (0600) and the ``erl`` arguments that use them; else none."""
    if settings.cluster.tls_dir is None:
        return []
    out = folder / "ssl_dist.conf"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(ssl_dist_optfile(settings.cluster.tls_dir))
    tmp.chmod(0o600)
    tmp.replace(out)
    return tls_dist_args(out)


def py_nodes_config(roles: tuple[tuple[str, int], ...] | None) -> str:
    """The ``stellar`` app's ``py_nodes`` entry for ``STELLAROPS_ROLES`` (empty: the app's own)."""
    if roles is None:
        return ""
    return "{py_nodes, [" + ", ".join(f"#{{role => {role}, count => {count}}}" for role, count in roles) + "]}"


def render_sys_config(
    environ: Mapping[str, str], out_dir: Path, *, source: Path = SYS_CONFIG_SRC, py_nodes: str = "",
    cluster: str = "", dist: str = LOOPBACK_DIST,
) -> Path:
    """``source`` (``rel/sys.config.src``, or a release's copy) with ``${VAR}`` replaced from
    ``environ`` (as the release does), ``${STELLAROPS_PY_NODES}`` by the ``stellar`` app's entries
    ``py_nodes`` (see ``py_nodes_config``) and ``cluster`` (``dist_config.stellar_cluster_config``)
    and ``${STELLAROPS_DIST_KERNEL}`` by ``dist`` (``dist_config.kernel_dist_config``), written to
    ``out_dir/sys.config``; the path to give ``erl -config``."""
    text = source.read_text()
    app_env = ", ".join(entry for entry in (py_nodes, cluster) if entry)
    values = {**SYS_CONFIG_DEFAULTS, **environ, "STELLAROPS_PY_NODES": app_env,
              "STELLAROPS_DIST_KERNEL": dist}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise UpError(f"{source} uses ${{{name}}}, which is not set")
        return values[name]

    out = out_dir / "sys.config"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, text))
    tmp.chmod(0o600)
    tmp.replace(out)
    return out


class Release:
    """A rebar3 release with its own erts (``rebar3 as prod release``; the image's
    ``/opt/stellarops/rel``): ``stellarops up`` runs its erl, boot file and ``sys.config.src``."""

    def __init__(self, root: Path) -> None:
        try:  # "ERTS_VSN REL_VSN", written by relx
            erts_vsn, rel_vsn = (root / "releases" / "start_erl.data").read_text().split()
        except (OSError, ValueError):
            raise UpError(f"STELLAROPS_RELEASE={root}: not a release (no releases/start_erl.data)") from None
        self.root = root
        self.erl = root / f"erts-{erts_vsn}" / "bin" / "erl"
        self.boot = root / "releases" / rel_vsn / "start"  # kernel, stdlib, sasl, stellar
        self.sys_config_src = root / "releases" / rel_vsn / "sys.config.src"
        for path in (self.erl, self.boot.with_suffix(".boot"), self.sys_config_src):
            if not path.exists():
                raise UpError(f"STELLAROPS_RELEASE={root}: {path} is missing (was it built with include_erts?)")


def _beam_command(node: str, sys_config: Path, release: Release | None = None, dist_args: list[str] | None = None) -> list[str]:
    if release is not None:
        code = [str(release.erl), "-boot", str(release.boot)]
    else:
        ebins = sorted(str(p) for p in (ROOT / "_build" / "default" / "lib").glob("*/ebin"))
        if not ebins:
            raise UpError("the BEAM app is not built: run `make setup`")
        code = ["erl", "-pa", *ebins]
    # Then a process that stops the node gracefully when its stdin (a pipe from us) closes: when
    # `stellarops up` dies, however it dies, the node and its Python nodes do not run on without
    # an owner (the next `up` could not start, or a second cluster would run the satellites).
    start = (
        "case application:ensure_all_started(stellar, permanent) of {ok, _} -> ok;"
        ' Error -> io:format(standard_error, "stellar did not start: ~p~n", [Error]), erlang:halt(1) end,'
        " spawn(fun() -> Wait = fun W() -> case io:get_line('') of eof -> init:stop();"
        " {error, _} -> init:stop(); _ -> W() end end, Wait() end)"
    )
    return [*code, "-name", node, *(dist_args or []), "-noshell", "-config", str(sys_config), "-eval", start]


async def _wait_until_ready(ctl: Node, beam: subprocess.Popen[bytes], node: str, timeout_s: float) -> list[Any]:
    """Poll ``stellar:nodes()`` until every Python node is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    while loop.time() < deadline:
        if beam.poll() is not None:
            raise UpError(f"{node} stopped during start-up (exit status {beam.returncode}); see its output above")
        try:
            last = await ctl.rpc(node, "stellar", "nodes", [], timeout=2)
            python_nodes = [n for n in last if n.get(Atom("role")) != "beam"]
            if python_nodes and all(n.get(Atom("status")) == "up" for n in python_nodes):
                return list(last)
        except (NodeDownError, RpcError):
            pass
        await asyncio.sleep(0.25)
    raise UpError(f"the Python nodes did not come up within {timeout_s:.0f} s: {to_json(last)}")


async def _prepare_database(
    conninfo: str, demo_satellites: int, admin_token: Path, wait_s: float, stop: asyncio.Event
) -> tuple[SeedReport, str | None]:
    """Migrate, seed the demo constellation and ground stations when the database is empty, and
    make sure the admin token file exists and is known; its secret when it was made now. A
    database that does not answer yet is asked again every second for up to ``wait_s``: hosts
    often start with their database (a container's first connect took over 5 s on busy shared
    cores, and `up` used to exit on it). Each step is idempotent, so a step cut off is redone."""
    deadline = asyncio.get_running_loop().time() + wait_s
    told = False
    while True:
        try:
            async with Database(conninfo) as db:
                await migrate(db)
                seeded = await seed(db, count=demo_satellites)
                return seeded, await ensure_admin_token(ApiTokens(db), admin_token, actor="stellarops-up")
        except ValidationError as exc:
            raise UpError(exc.problem) from None
        except DatabaseUnavailable as exc:
            if stop.is_set():  # the caller sees it and stops quietly
                return SeedReport(0, 0, "stopped while waiting for the database"), None
            if asyncio.get_running_loop().time() >= deadline:
                raise UpError(f"the database could not be prepared within {wait_s:.0f} s: {exc}") from None
            if not told:
                _say(f"the database does not answer yet ({exc}): asking again for up to {wait_s:.0f} s", problem=True)
                told = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        except DbError as exc:
            raise UpError(f"the database could not be prepared: {exc}") from None


def local_gateways(nodes: list[Any], host: str, beam: str | None = None) -> list[str]:
    """The gateway nodes this BEAM node started: those it reports as its own (``beam``), else
    (rows without it) those named after its ``host``. A cluster lists its peers' gateways too:
    a node without one of its own (``STELLAROPS_ROLES=orbital=1``) has no gateway to report, and
    its health check then must not probe another pod's. (Python nodes on loopback are all named
    after 127.0.0.1, on every host: the ``beam`` field tells them apart.)"""
    names = []
    for n in nodes:
        if n.get(Atom("role")) != "gateway":
            continue
        owner = n.get(Atom("beam"))
        name = str(n[Atom("name")])
        mine = str(owner) == beam if owner is not None and beam is not None else name.partition("@")[2] == host
        if mine:
            names.append(name)
    return names


async def _gateway_url(ctl: Node, nodes: list[Any], host: str, beam: str, timeout_s: float) -> str | None:
    """This node's gateway's URL (``gateway:info()`` of the gateway node), None without one. A
    gateway that is there but does not answer within ``timeout_s`` fails the start: a banner
    without the URL of a gateway that runs would send the operator looking in the wrong place.
    Each ask may take up to 10 s: the first one sets up the distribution connection to the
    gateway node, which over TLS on a loaded machine took longer than the 2 s once allowed."""
    names = local_gateways(nodes, host, beam)
    if not names:
        return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: object = "no answer"
    while True:
        try:
            info = await ctl.rpc(names[0], "gateway", "info", [], timeout=max(1.0, min(10.0, deadline - loop.time())))
            if type(info) is dict:
                return bytes(info[Atom("url")]).decode()
            last = info
        except (RpcError, NodeDownError, TimeoutError) as exc:
            last = exc
        if loop.time() > deadline:
            raise UpError(f"the gateway {names[0]} did not tell its URL within {timeout_s:.0f} s ({last})")
        await asyncio.sleep(0.2)


async def _wait_until_restored(ctl: Node, beam: subprocess.Popen[bytes], node: str, timeout_s: float) -> int:
    """Wait for the BEAM node's first restore from the store; the number of satellites then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if beam.poll() is not None:
            raise UpError(f"{node} stopped during start-up (exit status {beam.returncode}); see its output above")
        with contextlib.suppress(RpcError, NodeDownError, TimeoutError):
            status = await ctl.rpc(node, "stellar", "store_status", [], timeout=2)
            if status[Atom("restores")] >= 1 or status.get(Atom("enabled")) is False:  # restored, or no store node
                return len(await ctl.rpc(node, "stellar", "sats", [], timeout=10))
            if status.get(Atom("owner")) is False:  # another cluster owns the database: standby
                why = bytes(status[Atom("not_owner_reason")]).decode(errors="replace")
                _say(f"standby: {why}; this cluster takes over when it stops", problem=True)
                return 0
        await asyncio.sleep(0.2)
    raise UpError(f"{node} did not restore the satellites from the database within {timeout_s:.0f} s")


class _BeamOutput:
    """Copies the BEAM node's output to ours, noting what it says about the final checkpoint."""

    def __init__(self, beam: subprocess.Popen[bytes]) -> None:
        assert beam.stdout is not None
        self.checkpoint: str | None = None  # the line about the final checkpoint
        self.checkpoint_ok = False
        self._thread = threading.Thread(target=self._copy, args=(beam.stdout,), daemon=True)
        self._thread.start()

    def _copy(self, stream: Any) -> None:
        for line in stream:
            if _CHECKPOINT_FAILED in line or (b"checkpointed" in line and _CHECKPOINT_OK in line):
                self.checkpoint_ok = _CHECKPOINT_FAILED not in line
                self.checkpoint = _message(line.decode(errors="replace").strip())
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write(line.decode(errors="replace"))
                sys.stdout.flush()

    def wait(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


async def _stop_beam(
    beam: subprocess.Popen[bytes], output: _BeamOutput, watch: EmbeddedWatch | ExternalWatch, *, restored: bool
) -> int:
    """Stop the BEAM node gracefully and say whether its final checkpoint was written (once the
    satellites were restored: before that there is nothing of ours to checkpoint)."""
    if beam.poll() is None:
        if isinstance(watch, EmbeddedWatch):
            db_up, why = await watch.wait_up(DB_GRACE_AT_STOP_S), watch.health.last_error
        else:
            why = await watch.probe()
            db_up = why is None
        if not db_up:
            _say(f"the database is down ({why}): the final checkpoint cannot be written;"
                 " satellites will resume from their last periodic checkpoint", problem=True)  # fmt: skip
        beam.send_signal(signal.SIGTERM)  # init:stop(): the store writes the checkpoint, supervisors stop the Python nodes
        try:
            await asyncio.to_thread(beam.wait, BEAM_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _say(f"the BEAM node did not stop within {BEAM_STOP_TIMEOUT_S:.0f} s: killed", problem=True)
            beam.kill()
            await asyncio.to_thread(beam.wait)
        await asyncio.to_thread(output.wait, 5.0)
        if output.checkpoint_ok:
            _say(f"final checkpoint written ({output.checkpoint})")
        elif output.checkpoint is not None:
            _say(f"the final checkpoint could not be written ({output.checkpoint})", problem=True)
        elif db_up and restored:
            _say("the final checkpoint was not confirmed (no store node took it): satellites will resume"
                 " from their last periodic checkpoint", problem=True)  # fmt: skip
    return beam.returncode


def _say(message: str, *, problem: bool = False) -> None:
    print(console_line(message, level=logging.WARNING if problem else logging.INFO),
          file=sys.stderr if problem else sys.stdout, flush=True)  # fmt: skip


def _message(line: str) -> str:
    """The message of a BEAM log line: a JSON line's ``msg``; of "2026-...Z info: checkpointed
    24 satellite(s) at stop", what follows the level."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            return str(json.loads(line)["msg"])
    return line.split(": ", 1)[-1]


class _StatusFile:
    """``$STELLAROPS_HOME/up-status.json`` (0600, replaced whole): who runs the stack and how its
    database is, for status; once the stack is ready also ``cluster``: its nodes and the gateway's
    address, for scripts and tests (no secrets: not the cookie, not the token)."""

    def __init__(self, state: StateDir, node: str) -> None:
        self.path = state.status_file
        self.node = node
        self._database: dict[str, Any] = {}
        self._cluster: dict[str, Any] | None = None

    def write(self, health: DatabaseHealth) -> None:
        self._database = health.as_json()
        self._save()

    def ready(self, nodes: list[Any], gateway_url: str | None) -> None:
        """The stack is up (called before the banner: whoever saw the banner finds this)."""
        gateway = None if gateway_url is None else {"url": gateway_url, "port": urlsplit(gateway_url).port}
        self._cluster = {
            "nodes": [{"name": to_json(n.get(Atom("name"))), "role": to_json(n.get(Atom("role")))} for n in nodes],
            "gateway": gateway,
        }
        self._save()

    def _save(self) -> None:
        data: dict[str, Any] = {"pid": os.getpid(), "node": self.node, "database": self._database}
        if self._cluster is not None:
            data["cluster"] = self._cluster
        try:
            fd, tmp = tempfile.mkstemp(prefix=".up-status.", dir=self.path.parent)  # mode 0600
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f)
                os.replace(tmp, self.path)  # readers see the old file or the new one, never half
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as exc:  # a full disk must not stop the watcher: status is only a report
            logging.getLogger(__name__).warning("could not write %s: %s", self.path, exc)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


async def _run_up(settings: Settings) -> int:
    if settings.up.release is not None:
        Release(settings.up.release)  # a wrong STELLAROPS_RELEASE is said before anything starts
    state = StateDir(settings.node.home, settings.node.cookie)
    # Before anything else: a second `up` on this folder must change nothing (not even attach
    # to the embedded database). Held until everything is stopped.
    with state.owner_lock(settings.up.node_name):
        return await _run_owned(settings, state)


async def _run_owned(settings: Settings, state: StateDir) -> int:
    cookie = state.prepare()
    # Peers on other hosts look this node up in epmd on its interface: started there first (epmd
    # adds loopback itself, where the local nodes register).
    interface = settings.cluster.dist_interface
    if not ipaddress.IPv4Address(interface).is_loopback:
        try:
            await epmd.ensure_epmd(EpmdAddress(interface, settings.epmd.port))
        except NodeDownError as exc:  # e.g. an epmd already runs here on loopback only
            raise UpError(f"STELLAROPS_DIST_INTERFACE={interface}: epmd does not listen there ({exc}); an epmd"
                          " started for loopback only must be stopped first (epmd -kill)") from None  # fmt: skip
    await epmd.ensure_epmd(_epmd(settings))
    alive, _, host = settings.up.node_name.partition("@")
    try:
        await epmd.lookup(alive, host, epmd_port=settings.epmd.port)
    except NodeDownError:
        pass
    else:
        raise UpError(f"a node named {alive} is already running here (attach with: make shell)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = settings.database.url
    server: EmbeddedServer | None = None
    status_file = _StatusFile(state, settings.up.node_name)
    try:
        watch: EmbeddedWatch | ExternalWatch
        if url is None:
            server = EmbeddedServer(
                state.root / "pg", os_user=settings.database.pg_os_user,
                shared_buffers_mb=settings.database.pg_shared_buffers_mb,
            )  # fmt: skip
            try:
                conninfo = await asyncio.to_thread(server.start)
            except EmbeddedServerError as exc:
                raise UpError(str(exc)) from None
            if not server.started_here:  # we own the folder: it is left over by an `up` that died
                logging.getLogger(__name__).warning("the embedded PostgreSQL was left running by an earlier stellarops up: adopting it")
                server.adopt()
            watch = EmbeddedWatch(server, on_change=status_file.write)
        else:
            conninfo = url
            watch = ExternalWatch(url, on_change=status_file.write)
        status_file.write(watch.health)
        watching = asyncio.create_task(watch.run())
        try:
            return await _run_cluster(settings, state, cookie, conninfo, watch, status_file, stop)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            watch.stopped()
    finally:
        if server is not None:  # the object that started it: a fresh one would not stop it
            try:
                await asyncio.to_thread(server.stop)
            except EmbeddedServerError as exc:
                _say(f"the embedded PostgreSQL did not stop cleanly: {str(exc).splitlines()[0]}", problem=True)
        status_file.remove()


async def _run_cluster(
    settings: Settings, state: StateDir, cookie: bytes, conninfo: str, watch: EmbeddedWatch | ExternalWatch,
    status_file: _StatusFile, stop: asyncio.Event,
) -> int:
    admin_token = state.root / "admin-token"
    seeded, new_token = await _prepare_database(
        conninfo, settings.up.demo_satellites, admin_token, settings.up.start_timeout_s, stop
    )
    if stop.is_set():
        return 0
    host = settings.up.node_name.partition("@")[2]
    env = settings.child_env(
        STELLAROPS_HOME=str(state.root),  # the Python nodes' state folder is ours (access log)
        HOME=str(state.erlang_home),
        ERL_EPMD_ADDRESS=settings.epmd.host,
        DATABASE_URL=conninfo,  # for the store node (env only: never on a command line)
        STELLAROPS_LOG_FORMAT=settings.node.log_format,  # every node's (BEAM's through sys.config)
        # Resolved once (`auto`): a Python node restarted after this host lost its default route
        # (a network cut) must not fail to read its settings.
        STELLAROPS_NODE_NAME=settings.up.node_name,
        STELLAROPS_DIST_INTERFACE=settings.cluster.dist_interface,
    )
    if settings.cluster.tls_dir is not None:  # absolute: the Python nodes need not share our cwd
        env["STELLAROPS_DIST_TLS_DIR"] = str(settings.cluster.tls_dir)
    # The BEAM node reads $HOME/.erlang.cookie and hands the cookie to its Python nodes as
    # STELLAROPS_COOKIE; DATABASE_URL above holds the password DATABASE_PASSWORD_FILE gave.
    for name in ("STELLAROPS_COOKIE", "STELLAROPS_COOKIE_FILE", "DATABASE_PASSWORD_FILE"):
        env.pop(name, None)
    # A session of its own: Ctrl-C reaches us only, and we stop the node gracefully.
    release = None if settings.up.release is None else Release(settings.up.release)
    sys_config = render_sys_config(
        env, state.root, source=SYS_CONFIG_SRC if release is None else release.sys_config_src,
        py_nodes=py_nodes_config(settings.up.roles),
        cluster=", ".join(e for e in (stellar_cluster_config(settings.cluster), py_nodes_local_config(settings.cluster)) if e),
        dist=kernel_dist_config(settings.cluster),
    )  # fmt: skip
    dist_args = write_ssl_dist_optfile(settings, state.root)
    tls = _dist_tls(settings)
    beam = subprocess.Popen(
        _beam_command(settings.up.node_name, sys_config, release, dist_args), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
    )
    output = _BeamOutput(beam)
    restored = False
    try:
        async with Node(f"stellarops-ctl-{os.getpid()}@{host}", cookie=cookie, epmd_address=_epmd(settings), tls=tls) as ctl:

            async def start_up() -> None:
                nonlocal restored
                nodes = await _wait_until_ready(ctl, beam, settings.up.node_name, settings.up.start_timeout_s)
                count = await _wait_until_restored(ctl, beam, settings.up.node_name, settings.up.start_timeout_s)
                restored = True
                url = await _gateway_url(ctl, nodes, host, settings.up.node_name, settings.up.start_timeout_s)
                # JSON lines are collected as logs: the new token stays in its 0600 file only.
                shown_token = None if settings.node.log_format == "json" else new_token
                gateway = _gateway_text(url, admin_token, shown_token)
                status_file.ready(nodes, url)
                _print_banner(settings.up.node_name, state, nodes, count, seeded, describe_target(conninfo), gateway)

            starting = asyncio.create_task(start_up())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if starting.done():
                starting.result()  # raises UpError when the start failed
            else:  # SIGINT/SIGTERM during start-up
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            while not stop.is_set() and beam.poll() is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        rc = await _stop_beam(beam, output, watch, restored=restored)
    _say(f"{settings.up.node_name} stopped (exit status {rc})")
    return 0 if stop.is_set() else rc or 1


def _print_banner(
    node: str, state: StateDir, nodes: list[Any], count: int, seeded: SeedReport, database: str, gateway: str = ""
) -> None:
    lines = [f"  {to_json(n.get(Atom('name')))!s:<30} {to_json(n.get(Atom('role')))!s:<9} "
             f"{to_json(n.get(Atom('status')))}" for n in nodes]  # fmt: skip
    banner = (
        "\nStellarOps is running.\n"
        f"  BEAM node:    {node}\n"
        f"  cookie file:  {state.cookie_file} (or $STELLAROPS_COOKIE)\n"
        f"  database:     {database}\n"
        f"  satellites:   {count}"
        + (f" (demo constellation of {seeded.satellites} seeded now)" if seeded.satellites else " (restored)")
        + "\n"
        "Nodes:\n" + "\n".join(lines) + "\n" + gateway +
        "Remote shell (another terminal):  make shell\n"
        f"  or: HOME={state.erlang_home} erl -name shell-$$@127.0.0.1 -hidden -remsh {node}\n"
        "  then try:  stellar:sats().  stellar:nodes().\n"
        "Status as JSON:  .venv/bin/stellarops status\n"
        "Stop with Ctrl-C.\n"
    )
    print(console_line(banner, prefix=""), flush=True)  # one JSON object with JSON logs


def _gateway_text(url: str | None, token_file: Path, new_token: str | None) -> str:
    if url is None:
        return ""
    if new_token is not None:
        # The fragment is never sent to the server (not in access logs); the dashboard reads it
        # once into sessionStorage and removes it from the address bar.
        token = (
            f"  admin token:  {new_token}\n                (shown once; kept in {token_file}, mode 0600)\n"
            f"  sign in:      {url}/#token={new_token}\n"
        )
    else:
        token = f"  admin token:  in {token_file}\n"
    return (
        "HTTP API (gateway):\n"
        f"  dashboard:    {url}/\n"
        f"  API:          {url}/api/satellites  (docs {url}/api/docs, events {url}/api/events)\n"
        f"  health:       {url}/readyz   metrics: {url}/metrics\n"
        f"{token}"
        "  more tokens:  .venv/bin/stellarops token create --role viewer|operator|admin\n"
        f"  try:          curl -H \"Authorization: Bearer $(cat {token_file})\" {url}/api/satellites\n"
    )


async def _run_status(settings: Settings) -> dict[str, Any]:
    state = StateDir(settings.node.home, settings.node.cookie)
    cookie = state.cookie()
    host = settings.up.node_name.partition("@")[2]
    async with Node(f"stellarops-status-{os.getpid()}@{host}", cookie=cookie, epmd_address=_epmd(settings), tls=_dist_tls(settings)) as ctl:
        try:
            nodes = await ctl.rpc(settings.up.node_name, "stellar", "nodes", [])
            sats = await ctl.rpc(settings.up.node_name, "stellar", "sats", [])
            store = await ctl.rpc(settings.up.node_name, "stellar", "store_status", [])
        except NodeDownError as exc:
            raise UpError(f"{settings.up.node_name} is not running ({exc}); start it with `make run`") from None
        except RpcError as exc:  # e.g. a node busy right after a partition heals: one line, no traceback
            raise UpError(f"{settings.up.node_name} did not answer ({exc}); try again") from None
    by_mode: dict[str, int] = {}
    by_node: dict[str, int] = {}
    for sat in sats:
        mode, where = str(to_json(sat.get(Atom("mode")))), str(to_json(sat.get(Atom("node"))))
        by_mode[mode] = by_mode.get(mode, 0) + 1
        by_node[where] = by_node.get(where, 0) + 1
    return {
        "nodes": to_json(nodes),
        "satellites": {"total": len(sats), "by_mode": by_mode, "by_node": by_node},
        "database": _database_status(state),
        # Whether this cluster owns the database (one cluster runs the satellites of a database),
        # and where this node's commands and telemetry go: "local" (its own store), "remote" (the
        # owner's store on owner_node) or "none" (commands refused until a store owns it).
        "ownership": {
            "owner": to_json(store.get(Atom("owner"))),
            "reason": to_json(store.get(Atom("not_owner_reason"))),
            "route": to_json(store.get(Atom("route"))),
            "owner_node": to_json(store.get(Atom("owner_node"))),
        },
    }


def _database_status(state: StateDir) -> dict[str, Any]:
    """The database as the running ``stellarops up`` last saw it (its status file)."""
    try:
        data = json.loads(state.status_file.read_text())
        pid, database = int(data["pid"]), dict(data["database"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"state": "unknown", "detail": f"no stellarops up reports on {state.root}"}
    if not _process_alive(pid):
        return {"state": "unknown", "detail": f"the stellarops up that wrote {state.status_file} (pid {pid}) is gone"}
    return database


def _process_alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat_line.rpartition(") ")[2].startswith(("Z", "X"))


def up(settings: Settings) -> int:
    # The control node's own connects and disconnects are not news to the operator (the BEAM
    # node and the Python nodes log theirs); its warnings and errors still show.
    for quiet in ("erldist", "psycopg.pool"):
        logging.getLogger(quiet).setLevel(max(logging.WARNING, logging.getLogger().level))
    return asyncio.run(_run_up(settings))


def status(settings: Settings) -> int:
    report = asyncio.run(_run_status(settings))
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0
