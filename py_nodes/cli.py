"""The ``stellarops`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from py_nodes import orbital_cli, up
from py_nodes.erldist import DistTls, EpmdAddress, Node
from py_nodes.logs import configure as configure_logs
from py_nodes.logs import console_line
from py_nodes.roles import echo, gateway, orbital, sats, scheduler, store
from py_nodes.settings import LOG_LEVELS, Settings, SettingsError
from py_nodes.settings import load as load_settings
from py_nodes.state_dir import AlreadyRunning, StateDirError

# A role's start may return a coroutine function to await on a clean stop (e.g. to flush).
Role = Callable[[Node, Settings], Callable[[], Awaitable[None]] | None]
ROLES: dict[str, Role] = {
    "echo": echo.start,
    "gateway": gateway.start,
    "orbital": orbital.start,
    "sats": sats.start,
    "scheduler": scheduler.start,
    "store": store.start,
}

log = logging.getLogger("stellarops")


class ConfigError(Exception):
    """Bad configuration given by the user; the message says what to fix."""


def read_cookie(cookie_file: str | None, env_cookie: bytes | None) -> bytes:
    """The cookie from ``--cookie-file`` or ``STELLAROPS_COOKIE`` (never from argv)."""
    if cookie_file:
        path = Path(cookie_file)
        try:
            mode = path.stat().st_mode & 0o777
            cookie = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read cookie file {cookie_file}: {exc.strerror}") from exc
        if mode & 0o077:
            raise ConfigError(f"cookie file {cookie_file} is readable by others (mode {mode:o}); chmod 600 it")
    else:
        cookie = env_cookie or b""
    if not cookie:
        raise ConfigError("no cookie: pass --cookie-file FILE or set STELLAROPS_COOKIE")
    return cookie


async def run_node(args: argparse.Namespace, cookie: bytes, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    eof_watch = None
    if args.stop_on_eof:
        # Started by a BEAM port: when the BEAM side goes away our stdin closes; so do we.
        eof_watch = loop.create_task(_wait_eof(stop))
    epmd = EpmdAddress(settings.epmd.host, settings.epmd.port)
    try:
        tls = None if settings.cluster.tls_dir is None else DistTls.from_dir(settings.cluster.tls_dir)
    except ValueError as exc:  # e.g. a key that does not match its certificate
        raise ConfigError(f"STELLAROPS_DIST_TLS_DIR: {exc}") from None
    node = Node(args.name, cookie=cookie, published=args.published, net_ticktime_s=args.net_ticktime, epmd_address=epmd, tls=tls)
    async with node:
        try:
            close = ROLES[args.role](node, settings)
        except ValueError as exc:  # the role's configuration (e.g. STELLAROPS_TICK_S) is bad
            raise ConfigError(str(exc)) from None
        _collect_for_messages()
        log.info("node %s running role %s", node.name, args.role)
        print(console_line(f"node {node.name} up (role {args.role})"), flush=True)
        await stop.wait()
        if close is not None:
            await close()
    if eof_watch is not None:
        eof_watch.cancel()
    log.info("node %s stopped", args.name)


YOUNG_GC_EVERY = 20_000  # allocations between young collections (CPython's default: 700)


def _collect_for_messages() -> None:
    """Garbage-collector settings for a node, once its role has started (process-wide).

    What a node allocates per message (terms, mailbox entries) is freed by reference counting,
    never by the collector, but a full mailbox holds thousands of them alive: every young
    collection walked them again, 10 % of a node's CPU at 300,000 messages/s (issue 19). So
    young collections come 20,000 allocations apart, and what startup made (modules, the role's
    tables) is frozen out of every collection. A role's own setting for the oldest generation
    (sats) is kept."""
    young, middle, full = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(young, YOUNG_GC_EVERY), middle, full)


async def _wait_eof(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with contextlib.suppress(OSError):
        while await reader.read(4096):
            pass
    stop.set()


# -- subcommands: each registers its parser and a ``run(args, settings) -> exit status`` ----------


def _run_node(args: argparse.Namespace, settings: Settings) -> int:
    if "@" not in args.name:
        raise ConfigError(f"--name {args.name!r} must look like name@host")
    cookie = read_cookie(args.cookie_file, settings.node.cookie)
    with asyncio.Runner(loop_factory=_event_loop()) as runner:
        runner.run(run_node(args, cookie, settings))
    return 0


def _event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency, except on Windows): asyncio's own
    per-event work was a quarter of a node's CPU per distribution round trip (issue 19)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run_db(args: argparse.Namespace, settings: Settings) -> int:
    from py_nodes.db.cli import run_db_command  # psycopg only for the commands that use it

    return run_db_command(args.command, settings)


def _run_token(args: argparse.Namespace, settings: Settings) -> int:
    from py_nodes.token_cli import run_token_create  # psycopg only when needed

    return run_token_create(args.role, args.name, settings)


def build_parser(log_level: str = "INFO") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stellarops", description="StellarOps mission runtime")
    parser.add_argument("--log-level", default=log_level, type=str.upper, choices=LOG_LEVELS)
    sub = parser.add_subparsers(dest="command", required=True)
    node = sub.add_parser("node", help="run a Python node of the Erlang cluster")
    node.add_argument("--role", required=True, choices=sorted(ROLES))
    node.add_argument("--name", required=True, help="node name, e.g. py_echo@127.0.0.1")
    node.add_argument("--cookie-file", help="file holding the cookie (else STELLAROPS_COOKIE)")
    node.add_argument("--published", action="store_true", help="show in nodes() (see README caveat)")
    node.add_argument("--net-ticktime", type=float, default=60.0, help="seconds, as net_ticktime")
    node.add_argument("--stop-on-eof", action="store_true", help="exit when stdin closes")
    node.set_defaults(run=_run_node)
    sub.add_parser("up", help="start the cluster with the demo constellation (the main job)").set_defaults(
        run=lambda args, settings: up.up(settings)
    )
    sub.add_parser("status", help="print the nodes and satellite counts as JSON").set_defaults(
        run=lambda args, settings: up.status(settings)
    )
    sub.add_parser("migrate", help="apply the database migrations (DATABASE_URL, else the embedded server)").set_defaults(run=_run_db)
    sub.add_parser("seed", help="migrate, then add the demo constellation and ground stations to an empty database").set_defaults(run=_run_db)
    token = sub.add_parser("token", help="API tokens for the HTTP gateway").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="make a token; its secret is printed once on stdout")
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--name", help="a label for the token (default: '<role> token')")
    create.set_defaults(run=_run_token)
    orbital_cli.add_orbital_commands(sub)  # each with run=orbital_cli.run
    return parser


def main(argv: list[str] | None = None) -> int:
    try:  # before argparse: a bad variable is one line and exit 2, even for --help
        settings = load_settings()
    except SettingsError as exc:
        print(f"stellarops: {exc}", file=sys.stderr)
        return 2
    for line in settings.deprecations:
        print(f"stellarops: warning: {line}", file=sys.stderr)
    args = build_parser(settings.node.log_level).parse_args(orbital_cli.attach_negative_values(sys.argv[1:] if argv is None else argv))
    # A Python node's records carry its node name; a command's, stellarops-<command>.
    configure_logs(settings.node.log_format, args.log_level, args.name if args.command == "node" else f"stellarops-{args.command}")
    try:
        status: int = args.run(args, settings)
        return status
    except ConfigError as exc:
        print(console_line(str(exc), level=logging.ERROR), file=sys.stderr)
        return 2
    except AlreadyRunning as exc:  # another `up` owns the state folder: nothing was changed
        print(console_line(str(exc), level=logging.ERROR), file=sys.stderr)
        return 2
    except (up.UpError, StateDirError) as exc:
        print(console_line(str(exc), level=logging.ERROR), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
