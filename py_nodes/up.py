"""``stellarops up`` (the main job) and ``stellarops status``.

``up`` runs the database (``DATABASE_URL``, else the embedded PostgreSQL under the state folder),
migrates it and seeds the demo constellation when it is empty; then starts the BEAM node (whose
``stellar`` app starts and supervises the Python nodes, the ``store`` node among them), waits until
every Python node is up and the satellites are restored from the database, prints how to reach
the cluster (the gateway's and the dashboard's URLs too, and the first time the admin token with a
dashboard sign-in link: it is generated into ``$STELLAROPS_HOME/admin-token``, mode 0600), and
runs until SIGINT/SIGTERM. Those stop the BEAM node (its last checkpoint is written first), with
it every Python node, and then the embedded database. A hidden control node talks to BEAM
through ``rpc`` into the ``stellar`` facade.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from py_nodes.db import (
    ApiTokens,
    Database,
    SeedReport,
    ValidationError,
    describe_target,
    ensure_admin_token,
    migrate,
    running_database,
    seed,
)
from py_nodes.erldist import Atom, Node, NodeDownError, RpcError, epmd
from py_nodes.jsonterms import to_json
from py_nodes.state_dir import StateDir

__all__ = ["UpError", "status", "up"]

ROOT = Path(__file__).resolve().parent.parent
DEMO_SATELLITES = 24
_LOGGER = (
    "[{filters, log, [{no_progress, {fun logger_filters:progress/2, stop}}]},"
    " {handler, default, logger_std_h, #{formatter => {logger_formatter,"
    ' #{single_line => true, template => [time, " ", level, ": ", msg, "\\n"]}}}}]'
)


class UpError(Exception):
    """The main job could not start; the message says why and what to do."""


@dataclass(frozen=True)
class UpConfig:
    beam_node: str = os.environ.get("STELLAR_NODE_NAME", "stellar@127.0.0.1")
    demo_satellites: int = int(os.environ.get("STELLAROPS_DEMO_SATELLITES", DEMO_SATELLITES))
    start_timeout_s: float = float(os.environ.get("STELLAROPS_START_TIMEOUT", "60"))


def _beam_command(node: str) -> list[str]:
    ebins = sorted(str(p) for p in (ROOT / "_build" / "default" / "lib").glob("*/ebin"))
    if not ebins:
        raise UpError("the BEAM app is not built: run `make setup`")
    start = (
        "case application:ensure_all_started(stellar, permanent) of {ok, _} -> ok;"
        ' Error -> io:format(standard_error, "stellar did not start: ~p~n", [Error]), erlang:halt(1) end'
    )
    return [
        "erl", "-name", node, "-noshell",
        "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
        "-kernel", "logger_level", "info", "-kernel", "logger", _LOGGER,
        "-pa", *ebins, "-eval", start,
    ]  # fmt: skip


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


async def _prepare_database(conninfo: str, demo_satellites: int, admin_token: Path) -> tuple[SeedReport, str | None]:
    """Migrate, seed the demo constellation and ground stations when the database is empty, and
    make sure the admin token file exists and is known; its secret when it was made now."""
    async with Database(conninfo) as db:
        await migrate(db)
        seeded = await seed(db, count=demo_satellites)
        try:
            return seeded, await ensure_admin_token(ApiTokens(db), admin_token, actor="stellarops-up")
        except ValidationError as exc:
            raise UpError(exc.problem) from None


async def _gateway_url(ctl: Node, nodes: list[Any], timeout_s: float = 10.0) -> str | None:
    """The gateway's URL (``gateway:info()`` of the gateway node), None without one."""
    names = [str(n[Atom("name")]) for n in nodes if n.get(Atom("role")) == "gateway"]
    if not names:
        return None
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        with contextlib.suppress(RpcError, NodeDownError):
            info = await ctl.rpc(names[0], "gateway", "info", [], timeout=2)
            if type(info) is dict:
                return bytes(info[Atom("url")]).decode()
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.2)


async def _wait_until_restored(ctl: Node, beam: subprocess.Popen[bytes], node: str, timeout_s: float) -> int:
    """Wait for the BEAM node's first restore from the store; the number of satellites then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if beam.poll() is not None:
            raise UpError(f"{node} stopped during start-up (exit status {beam.returncode}); see its output above")
        with contextlib.suppress(RpcError, NodeDownError, TimeoutError):
            status = await ctl.rpc(node, "stellar_store", "status", [], timeout=2)
            if status[Atom("restores")] >= 1:
                return len(await ctl.rpc(node, "stellar", "sats", [], timeout=10))
        await asyncio.sleep(0.2)
    raise UpError(f"{node} did not restore the satellites from the database within {timeout_s:.0f} s")


def _stop(beam: subprocess.Popen[bytes]) -> int:
    if beam.poll() is None:
        beam.send_signal(signal.SIGTERM)  # init:stop(): supervisors stop the Python nodes
        try:
            beam.wait(30)
        except subprocess.TimeoutExpired:
            beam.kill()
            beam.wait()
    return beam.returncode


async def _run_up(config: UpConfig) -> int:
    state = StateDir()
    cookie = state.prepare()
    await epmd.ensure_epmd()
    alive, _, host = config.beam_node.partition("@")
    try:
        await epmd.lookup(alive, host)
    except NodeDownError:
        pass
    else:
        raise UpError(f"a node named {alive} is already running here (attach with: make shell)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with running_database() as conninfo:
        admin_token = state.root / "admin-token"
        seeded, new_token = await _prepare_database(conninfo, config.demo_satellites, admin_token)
        env = dict(
            os.environ,
            HOME=str(state.erlang_home),
            ERL_EPMD_ADDRESS=os.environ.get("ERL_EPMD_ADDRESS", "127.0.0.1"),
            DATABASE_URL=conninfo,  # for the store node (env only: never on a command line)
        )
        env.pop("STELLAROPS_COOKIE", None)  # the BEAM node reads $HOME/.erlang.cookie
        # A session of its own: Ctrl-C reaches us only, and we stop the node gracefully.
        beam = subprocess.Popen(_beam_command(config.beam_node), env=env, start_new_session=True)
        try:
            async with Node(f"stellarops-ctl-{os.getpid()}@{host}", cookie=cookie) as ctl:
                nodes = await _wait_until_ready(ctl, beam, config.beam_node, config.start_timeout_s)
                count = await _wait_until_restored(ctl, beam, config.beam_node, config.start_timeout_s)
                url = await _gateway_url(ctl, nodes)
                gateway = _gateway_text(url, admin_token, new_token)
                _print_banner(config.beam_node, state, nodes, count, seeded, describe_target(conninfo), gateway)
                while not stop.is_set() and beam.poll() is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
        finally:
            rc = _stop(beam)
    print(f"stellarops: {config.beam_node} stopped (exit status {rc})", flush=True)
    return 0 if stop.is_set() else rc or 1


def _print_banner(
    node: str, state: StateDir, nodes: list[Any], count: int, seeded: SeedReport, database: str, gateway: str = ""
) -> None:
    lines = [f"  {to_json(n.get(Atom('name')))!s:<30} {to_json(n.get(Atom('role')))!s:<8} "
             f"{to_json(n.get(Atom('status')))}" for n in nodes]  # fmt: skip
    print(
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
        "Stop with Ctrl-C.\n",
        flush=True,
    )


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


async def _run_status(config: UpConfig) -> dict[str, Any]:
    cookie = StateDir().cookie()
    host = config.beam_node.partition("@")[2]
    async with Node(f"stellarops-status-{os.getpid()}@{host}", cookie=cookie) as ctl:
        try:
            nodes = await ctl.rpc(config.beam_node, "stellar", "nodes", [])
            sats = await ctl.rpc(config.beam_node, "stellar", "sats", [])
        except NodeDownError as exc:
            raise UpError(f"{config.beam_node} is not running ({exc}); start it with `make run`") from None
    by_mode: dict[str, int] = {}
    by_node: dict[str, int] = {}
    for sat in sats:
        mode, where = str(to_json(sat.get(Atom("mode")))), str(to_json(sat.get(Atom("node"))))
        by_mode[mode] = by_mode.get(mode, 0) + 1
        by_node[where] = by_node.get(where, 0) + 1
    return {"nodes": to_json(nodes), "satellites": {"total": len(sats), "by_mode": by_mode, "by_node": by_node}}


def up() -> int:
    # The control node's own connects and disconnects are not news to the operator (the BEAM
    # node and the Python nodes log theirs); its warnings and errors still show.
    for quiet in ("erldist", "psycopg.pool"):
        logging.getLogger(quiet).setLevel(max(logging.WARNING, logging.getLogger().level))
    return asyncio.run(_run_up(UpConfig()))


def status() -> int:
    report = asyncio.run(_run_status(UpConfig()))
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0
