"""Every setting the project reads from the environment, in one place.

``Settings.from_env(env)`` takes a mapping (``os.environ`` in production, a dict in tests) and
returns frozen dataclasses, one per part of the system; it is pure except that it reads the files
the ``*_FILE`` variables name (secrets mounted into a container). ``load()`` is the only code in
``py_nodes``, ``web`` and ``orbital`` that reads ``os.environ`` for the project's variables; the
rest receives settings as arguments. A bad value raises ``SettingsError`` whose message is one
line naming the variable, what was given and what is allowed (the CLI prints it and exits 2).

``VARIABLES`` is the table of every variable (name, meaning, default): the README's
configuration table is checked against it by a test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeVar

from py_nodes.vocabulary import NODE_ROLES

__all__ = [
    "VARIABLES",
    "ClusterSettings",
    "DatabaseSettings",
    "EpmdSettings",
    "GatewaySettings",
    "NodeSettings",
    "SchedulerSettings",
    "Settings",
    "SettingsError",
    "UpSettings",
    "Variable",
    "load",
]

T = TypeVar("T")

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_DASHBOARD_DIR: Final = REPO_ROOT / "web" / "dashboard" / "dist"
DEFAULT_NODE_NAME: Final = "stellar@127.0.0.1"
DEFAULT_DEMO_SATELLITES: Final = 24
# The embedded PostgreSQL's cache (its own default is 128 MB: too small for telemetry's index
# beyond ~10,000 satellites; see py_nodes/db/server.py).
DEFAULT_PG_SHARED_BUFFERS_MB: Final = 1024
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEPRECATED: Final = {"STELLAR_NODE_NAME": "STELLAROPS_NODE_NAME"}


class SettingsError(ValueError):
    """A variable has a value the project cannot use; ``str()`` is one line for the operator."""

    def __init__(self, name: str, given: str, allowed: str) -> None:
        self.name, self.given, self.allowed = name, given, allowed
        super().__init__(f"{name}={given!r:.60}: {allowed}")


@dataclass(frozen=True, slots=True)
class Variable:
    """One row of the configuration table."""

    name: str
    meaning: str
    default: str
    secret: bool = False


VARIABLES: Final[tuple[Variable, ...]] = (
    Variable("STELLAROPS_HOME", "state folder: cookie, Erlang home, embedded database, logs", "./.stellarops"),
    Variable("STELLAROPS_COOKIE", "the Erlang cookie (else the file `$STELLAROPS_HOME/cookie`, made on first run)", "generated", secret=True),
    Variable("STELLAROPS_COOKIE_FILE", "a file holding the Erlang cookie, e.g. a secret at `/run/secrets/erlang_cookie` (not with `STELLAROPS_COOKIE`)", "none"),
    Variable("STELLAROPS_NODE_NAME", "the BEAM node's name (`name@host`; `name@auto`: host is the `STELLAROPS_DIST_INTERFACE` address); `STELLAR_NODE_NAME` is its deprecated spelling", DEFAULT_NODE_NAME),
    Variable("STELLAROPS_BEAM_NODE", "the BEAM node a Python node belongs to (BEAM sets it for the nodes it starts)", "none"),
    Variable("STELLAROPS_LOG_LEVEL", "log level of Python nodes and commands (" + ", ".join(LOG_LEVELS) + ")", "INFO"),
    Variable("STELLAROPS_LOG_FORMAT", "log format of every node (BEAM, Python nodes, `up`): `text`, or `json` (one object per line: ts, level, node, msg, sat_id, request_id); the container image sets `json`", "text"),
    Variable("STELLAROPS_DEMO_SATELLITES", "size of the demo constellation seeded into an empty database (0..100000)", str(DEFAULT_DEMO_SATELLITES)),
    Variable("STELLAROPS_ROLES", "the Python nodes `stellarops up`'s BEAM node starts: `role=count,...`, roles " + ", ".join(NODE_ROLES) + ", count 1..64 (e.g. `gateway=1`)", "the `stellar` app's `py_nodes`"),
    Variable("STELLAROPS_RELEASE", "the BEAM release `stellarops up` runs (its erts, boot and `sys.config.src`; the image's `/opt/stellarops/rel`)", "the build tree (`_build`, `erl` on PATH)"),
    Variable("STELLAROPS_START_TIMEOUT", "seconds `stellarops up` waits for the cluster to come up", "60"),
    Variable("STELLAROPS_TICK_S", "tick period of the satellite actors, seconds (BEAM passes its `tick_s`)", "1.0"),
    Variable("STELLAROPS_PY", "the `stellarops` executable BEAM starts Python nodes with", "./.venv/bin/stellarops"),
    Variable("STELLAROPS_PG_OS_USER", "system user the embedded PostgreSQL runs as when started by root", "stellarops-pg"),
    Variable("STELLAROPS_PG_SHARED_BUFFERS_MB", "the embedded PostgreSQL's page cache, MB (shared_buffers; 16..1048576)", "1024"),
    Variable("DATABASE_URL", "PostgreSQL conninfo or URL of an external server (unset: the embedded server)", "embedded", secret=True),
    Variable("DATABASE_PASSWORD_FILE", "a file holding the password for `DATABASE_URL`, e.g. a secret at `/run/secrets/db_password`", "none"),
    Variable("ERL_EPMD_ADDRESS", "address epmd listens on (the first of a comma-separated list is used)", "127.0.0.1"),
    Variable("ERL_EPMD_PORT", "epmd's port", "4369"),
    Variable("STELLAROPS_CLUSTER_PEERS", "other BEAM nodes to connect to, comma-separated node names (e.g. `stellar@10.0.0.6,stellar@10.0.0.7`)", "none"),
    Variable("STELLAROPS_CLUSTER_DNS", "a DNS name whose A records are the BEAM nodes, each `<alive>@<ip>` with this node's alive name (a Kubernetes headless Service, a container network alias)", "none"),
    Variable("STELLAROPS_CLUSTER_DNS_POLL_S", "how often peers are looked up and reconnected, seconds (0.1..3600)", "5"),
    Variable("STELLAROPS_CLUSTER_SIZE", "the expected number of BEAM nodes that run satellites (1..1000; gateway-only and orbital-only nodes do not count): a node runs satellites and takes commands only while it sees a strict majority of them (see Several BEAM nodes)", "1 (a single node: always a majority)"),
    Variable("STELLAROPS_CLUSTER_FAILURE_MS", "a connected BEAM peer that sent no heartbeat and no traffic for this long is disconnected and its satellites run elsewhere, milliseconds (300..600000)", "3000"),
    Variable("STELLAROPS_DIST_INTERFACE", "the IPv4 address the BEAM node's distribution (and epmd, besides loopback) listens on; with an address in the node name, that address; `auto`: this host's address on its default route (a container's own)", "127.0.0.1"),
    Variable("STELLAROPS_DIST_PORT_MIN", "lowest port of the BEAM node's distribution listener (1024..65535), for firewalls and NetworkPolicies", "any free port"),
    Variable("STELLAROPS_DIST_PORT_MAX", "highest port of that range (needs `STELLAROPS_DIST_PORT_MIN`; >= it)", "`STELLAROPS_DIST_PORT_MIN`"),
    Variable("STELLAROPS_PY_NODES_LOCAL", "`true`: a BEAM node's Python nodes listen on loopback (named `<role><n>-<host>@127.0.0.1` when the BEAM node is not on loopback) and its satellites' actors run on its own `sats` nodes only; `false`: they are named after the BEAM node's host and listen there, and actors may be placed on any host's", "true"),
    Variable("STELLAROPS_DIST_TLS_DIR", "a folder holding `ca.crt`, `tls.crt` and `tls.key` (PEM, a Kubernetes TLS secret's names): the distribution of every node (BEAM and Python) runs over TLS, each side verifying the other's certificate against `ca.crt`", "none (plain TCP)"),
    Variable("STELLAROPS_HTTP_HOST", "address the gateway listens on", "127.0.0.1"),
    Variable("STELLAROPS_HTTP_PORT", "gateway port (0: any free port)", "8080"),
    Variable("STELLAROPS_CORS_ORIGINS", "comma-separated origins allowed cross-origin (`*`: any)", "none (CORS off)"),
    Variable("STELLAROPS_HTTP_MAX_BODY", "largest request body, bytes (1024..67108864)", "65536"),
    Variable("STELLAROPS_SSE_QUEUE", "events waiting per SSE client before it is dropped", "25000"),
    Variable("STELLAROPS_SSE_WRITE_TIMEOUT_S", "a write to an SSE client not done after this many seconds drops the client", "10"),
    Variable("STELLAROPS_SSE_SEND_BUFFER", "socket send buffer of an SSE connection, bytes (0: the kernel's)", "65536"),
    Variable("STELLAROPS_SSE_HEARTBEAT_S", "idle seconds between SSE heartbeat comments", "15"),
    Variable("STELLAROPS_SAT_CACHE_S", "oldest snapshot GET /api/satellites/{id} may answer from (0: ask BEAM every time)", "5"),
    Variable("STELLAROPS_ACCESS_LOG", "gateway access log: a file, `-` for stdout, `off`", "`$STELLAROPS_HOME/log/gateway-access.jsonl` (stdout without `STELLAROPS_HOME`)"),
    Variable("STELLAROPS_DASHBOARD_DIR", "the built dashboard (relative: to the repository)", "web/dashboard/dist"),
    Variable("STELLAROPS_HTTP_ANONYMOUS_ROLE", "`viewer`: requests without a token may read; `none`: every request needs one", "none"),
    Variable("STELLAROPS_SCHEDULER_HORIZON_S", "how far ahead the mission scheduler plans, seconds (600..604800)", "86400"),
    Variable("STELLAROPS_SCHEDULER_FREEZE_S", "planned tasks starting within this many seconds are not moved by a re-plan (0..3600)", "300"),
    Variable("STELLAROPS_SCHEDULER_BUDGET_S", "time budget of one plan solve, seconds (0.05..60)", "2"),
    Variable("STELLAROPS_SCHEDULER_BACKOFF_S", "wait before a failed task is tried again, seconds, doubled per attempt (1..3600)", "60"),
    Variable("STELLAROPS_SCHEDULER_SETUP_GAP_S", "gap between two downlinks on one station antenna, seconds (0..3600)", "60"),
)
KNOWN: Final = frozenset(v.name for v in VARIABLES) | frozenset(DEPRECATED)


# -- parsers: each takes the raw text (already stripped, non-empty) --------------------------


def _text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _parse(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = _text(env, name)
    return default if not raw else parse(raw)


def _int_in(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, raw, f"must be an integer in {low}..{high}") from None
        if not low <= value <= high:
            raise SettingsError(name, raw, f"must be an integer in {low}..{high}")
        return value

    return parse


def _float_in(name: str, low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    bound = f"{'>' if low_open else '>='} {low:g} and <= {high:g}"

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(name, raw, f"must be a number of seconds {bound}") from None
        if not (value > low if low_open else value >= low) or not value <= high:
            raise SettingsError(name, raw, f"must be a number of seconds {bound}")
        return value

    return parse


def _node_name(name: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        alive, at, host = raw.partition("@")
        if not at or not alive or not host or any(c.isspace() for c in raw):
            raise SettingsError(name, raw, "must be a node name like stellar@127.0.0.1")
        return raw

    return parse


def _choice(name: str, choices: tuple[str, ...], *, fold: Callable[[str], str] = str.lower) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = fold(raw)
        if value not in choices:
            raise SettingsError(name, raw, "must be one of " + ", ".join(choices))
        return value

    return parse


MAX_ROLE_COUNT: Final = 64  # as stellar_config's MAX_COUNT


def _roles(raw: str) -> tuple[tuple[str, int], ...]:
    """``sats=2,orbital=1,gateway=1`` -> ``(("sats", 2), ("orbital", 1), ("gateway", 1))``."""
    allowed = f"must be role=count,... with roles from {', '.join(NODE_ROLES)}, each once, count 1..{MAX_ROLE_COUNT}"
    roles: list[tuple[str, int]] = []
    for item in raw.split(","):
        role, eq, count = (part.strip() for part in item.partition("="))
        if not eq or role not in NODE_ROLES or any(role == r for r, _ in roles) or not count.isdigit():
            raise SettingsError("STELLAROPS_ROLES", raw, allowed)
        if not 1 <= int(count) <= MAX_ROLE_COUNT:
            raise SettingsError("STELLAROPS_ROLES", raw, allowed)
        roles.append((role, int(count)))
    return tuple(roles)


def _secret_file(env: Mapping[str, str], name: str, what: str) -> str | None:
    """The content of the file ``name`` names (trailing newlines dropped), None when unset."""
    path = _text(env, name)
    if not path:
        return None
    try:
        value = Path(path).read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(name, path, f"must be a readable file holding {what} ({type(exc).__name__})") from None
    if not value.strip():
        raise SettingsError(name, path, f"must be a file holding {what} (it is empty)")
    return value


def _cookie(env: Mapping[str, str]) -> bytes | None:
    """``STELLAROPS_COOKIE``, else the content of ``STELLAROPS_COOKIE_FILE``; None: neither."""
    from_env = _text(env, "STELLAROPS_COOKIE")
    if from_env and _text(env, "STELLAROPS_COOKIE_FILE"):
        raise SettingsError("STELLAROPS_COOKIE_FILE", _text(env, "STELLAROPS_COOKIE_FILE"), "must not be set together with STELLAROPS_COOKIE")
    from_file = _secret_file(env, "STELLAROPS_COOKIE_FILE", "the Erlang cookie")
    return (from_env or (from_file or "").strip()).encode() or None


def _database_url(env: Mapping[str, str]) -> str | None:
    """``DATABASE_URL``, with the password from ``DATABASE_PASSWORD_FILE`` when that is set."""
    url = _text(env, "DATABASE_URL") or None
    password = _secret_file(env, "DATABASE_PASSWORD_FILE", "the database password")
    if password is None:
        return url
    if url is None:
        raise SettingsError("DATABASE_PASSWORD_FILE", _text(env, "DATABASE_PASSWORD_FILE"), "must be used with DATABASE_URL (the embedded server needs no password)")
    from psycopg.conninfo import make_conninfo  # here: settings stays cheap to import without it

    try:
        return make_conninfo(url, password=password)
    except Exception:  # psycopg.ProgrammingError: the URL does not parse (never show it)
        raise SettingsError("DATABASE_URL", "(hidden)", "must be a PostgreSQL conninfo or URL") from None


# -- the settings, one dataclass per part ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """What every command and Python node needs."""

    home: Path
    cookie: bytes | None = field(repr=False)  # None: read (or create) the cookie file in ``home``
    log_level: str
    beam_node: str | None  # the BEAM node a Python node belongs to; None when not started by BEAM
    tick_s: float
    log_format: Literal["json", "text"] = "text"  # every node's: BEAM gets it through sys.config


@dataclass(frozen=True, slots=True)
class UpSettings:
    """``stellarops up`` and ``status``."""

    node_name: str
    demo_satellites: int
    start_timeout_s: float
    roles: tuple[tuple[str, int], ...] | None = None  # (role, count); None: the app's py_nodes
    release: Path | None = None  # the BEAM release to run; None: the build tree


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str | None = field(repr=False)  # None: the embedded server under the state folder
    pg_os_user: str
    pg_shared_buffers_mb: int = DEFAULT_PG_SHARED_BUFFERS_MB


@dataclass(frozen=True, slots=True)
class EpmdSettings:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """How the BEAM node finds its peers and where its distribution listens."""

    peers: tuple[str, ...] = ()
    dns: str | None = None
    dns_poll_s: float = 5.0
    size: int = 1  # expected BEAM nodes: the quorum is a strict majority of them
    failure_ms: int = 3000  # a BEAM peer silent this long is disconnected
    dist_interface: str = "127.0.0.1"
    dist_ports: tuple[int, int] | None = None  # (min, max); None: any free port
    py_nodes_local: bool = True  # Python nodes on loopback, actors placed on this node's own
    tls_dir: Path | None = None  # ca.crt, tls.crt, tls.key; None: plain TCP distribution


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    sse_queue_events: int = 25_000  # a tick of every satellite's telemetry comes at once: 10k satellites, 10k events
    sse_heartbeat_s: float = 15.0
    sse_write_timeout_s: float = 10.0
    sse_send_buffer_bytes: int = 64 * 1024
    sat_cache_s: float = 5.0
    access_log: str | None = "-"  # None: off; "-": stdout; else a file
    log_dir: Path | None = None  # the state folder's log folder (ours: kept 0700), when it is named
    dashboard_dir: Path = DEFAULT_DASHBOARD_DIR
    anonymous_role: Literal["viewer"] | None = None


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """The mission scheduler (the ``scheduler`` role)."""

    horizon_s: float = 86_400.0
    freeze_s: float = 300.0
    budget_s: float = 2.0
    backoff_s: float = 60.0
    setup_gap_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Settings:
    node: NodeSettings
    up: UpSettings
    database: DatabaseSettings
    epmd: EpmdSettings
    gateway: GatewaySettings
    deprecations: tuple[str, ...] = ()  # one line each, for the caller to log
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    # The whole environment, handed on to the processes we start (the BEAM node): never printed.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def child_env(self, **overrides: str) -> dict[str, str]:
        """The environment for a process we start: ours, with ``overrides``."""
        return {**self.environ, **overrides}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Every setting from ``env``; ``SettingsError`` for the first bad variable."""
        home = Path(_text(env, "STELLAROPS_HOME") or Path.cwd() / ".stellarops").absolute()
        cookie = _cookie(env)
        deprecations: list[str] = []
        node_name_var = "STELLAROPS_NODE_NAME"
        if not _text(env, node_name_var) and _text(env, "STELLAR_NODE_NAME"):
            node_name_var = "STELLAR_NODE_NAME"
            deprecations.append("STELLAR_NODE_NAME is deprecated: set STELLAROPS_NODE_NAME instead")
        cluster = _cluster(env, _parse(env, node_name_var, DEFAULT_NODE_NAME, _node_name(node_name_var)))
        node_name = _parse(env, node_name_var, DEFAULT_NODE_NAME, _node_name(node_name_var))
        if node_name.endswith("@auto"):  # named after the address the distribution listens on
            node_name = f"{node_name.removesuffix('@auto')}@{cluster.dist_interface}"
        return cls(
            node=NodeSettings(
                home=home,
                cookie=cookie,
                log_level=_parse(env, "STELLAROPS_LOG_LEVEL", "INFO", _choice("STELLAROPS_LOG_LEVEL", LOG_LEVELS, fold=str.upper)),
                beam_node=_parse(env, "STELLAROPS_BEAM_NODE", None, _node_name("STELLAROPS_BEAM_NODE")),
                tick_s=_parse(env, "STELLAROPS_TICK_S", 1.0, _float_in("STELLAROPS_TICK_S", 0.0, 3600.0, low_open=True)),
                log_format=_log_format(env),
            ),
            up=UpSettings(
                node_name=node_name,
                demo_satellites=_parse(env, "STELLAROPS_DEMO_SATELLITES", DEFAULT_DEMO_SATELLITES, _int_in("STELLAROPS_DEMO_SATELLITES", 0, 100_000)),
                start_timeout_s=_parse(env, "STELLAROPS_START_TIMEOUT", 60.0, _float_in("STELLAROPS_START_TIMEOUT", 1.0, 3600.0)),
                roles=_parse(env, "STELLAROPS_ROLES", None, _roles),
                release=Path(release).absolute() if (release := _text(env, "STELLAROPS_RELEASE")) else None,
            ),
            database=DatabaseSettings(
                url=_database_url(env),
                pg_os_user=_text(env, "STELLAROPS_PG_OS_USER") or "stellarops-pg",
                pg_shared_buffers_mb=_parse(
                    env, "STELLAROPS_PG_SHARED_BUFFERS_MB", DEFAULT_PG_SHARED_BUFFERS_MB,
                    _int_in("STELLAROPS_PG_SHARED_BUFFERS_MB", 16, 1_048_576),
                ),
            ),
            epmd=EpmdSettings(
                host=_text(env, "ERL_EPMD_ADDRESS").split(",")[0].strip() or "127.0.0.1",
                port=_parse(env, "ERL_EPMD_PORT", 4369, _int_in("ERL_EPMD_PORT", 1, 65535)),
            ),
            gateway=_gateway(env),
            deprecations=tuple(deprecations),
            scheduler=_scheduler(env),
            cluster=cluster,
            environ=dict(env),
        )


def _gateway(env: Mapping[str, str]) -> GatewaySettings:
    defaults = GatewaySettings()
    origins = tuple(o.strip() for o in _text(env, "STELLAROPS_CORS_ORIGINS").split(",") if o.strip())
    access_log: str | None = _text(env, "STELLAROPS_ACCESS_LOG")
    home = _text(env, "STELLAROPS_HOME")
    log_dir = Path(home).absolute() / "log" if home else None
    if not access_log:  # a file in the state folder when one is named (BEAM's nodes), else stdout
        access_log = str(log_dir / "gateway-access.jsonl") if log_dir else "-"
    elif access_log == "off":
        access_log = None
    dashboard = _text(env, "STELLAROPS_DASHBOARD_DIR")
    # Relative to the repository, not the working directory: BEAM starts the gateway node.
    dashboard_dir = REPO_ROOT / Path(dashboard).expanduser() if dashboard else DEFAULT_DASHBOARD_DIR
    # Opt-in only, and never above viewer: anonymous writes would bypass the audit trail.
    anonymous = _parse(env, "STELLAROPS_HTTP_ANONYMOUS_ROLE", "none", _choice("STELLAROPS_HTTP_ANONYMOUS_ROLE", ("none", "viewer")))
    return GatewaySettings(
        host=_text(env, "STELLAROPS_HTTP_HOST") or defaults.host,
        port=_parse(env, "STELLAROPS_HTTP_PORT", defaults.port, _int_in("STELLAROPS_HTTP_PORT", 0, 65535)),
        cors_origins=origins,
        max_body_bytes=_parse(env, "STELLAROPS_HTTP_MAX_BODY", defaults.max_body_bytes, _int_in("STELLAROPS_HTTP_MAX_BODY", 1024, 64 << 20)),
        sse_queue_events=_parse(env, "STELLAROPS_SSE_QUEUE", defaults.sse_queue_events, _int_in("STELLAROPS_SSE_QUEUE", 1, 1_000_000)),
        sse_heartbeat_s=_parse(env, "STELLAROPS_SSE_HEARTBEAT_S", defaults.sse_heartbeat_s, _float_in("STELLAROPS_SSE_HEARTBEAT_S", 0.05, 3600.0)),
        sse_write_timeout_s=_parse(env, "STELLAROPS_SSE_WRITE_TIMEOUT_S", defaults.sse_write_timeout_s, _float_in("STELLAROPS_SSE_WRITE_TIMEOUT_S", 0.1, 3600.0)),
        sse_send_buffer_bytes=_parse(env, "STELLAROPS_SSE_SEND_BUFFER", defaults.sse_send_buffer_bytes, _int_in("STELLAROPS_SSE_SEND_BUFFER", 0, 64 << 20)),
        sat_cache_s=_parse(env, "STELLAROPS_SAT_CACHE_S", defaults.sat_cache_s, _float_in("STELLAROPS_SAT_CACHE_S", 0.0, 3600.0)),
        access_log=access_log,
        log_dir=log_dir,
        dashboard_dir=dashboard_dir,
        anonymous_role="viewer" if anonymous == "viewer" else None,
    )


def _scheduler(env: Mapping[str, str]) -> SchedulerSettings:
    d = SchedulerSettings()

    def seconds(name: str, default: float, low: float, high: float) -> float:
        return _parse(env, name, default, _float_in(name, low, high))

    return SchedulerSettings(
        horizon_s=seconds("STELLAROPS_SCHEDULER_HORIZON_S", d.horizon_s, 600.0, 604_800.0),
        freeze_s=seconds("STELLAROPS_SCHEDULER_FREEZE_S", d.freeze_s, 0.0, 3600.0),
        budget_s=seconds("STELLAROPS_SCHEDULER_BUDGET_S", d.budget_s, 0.05, 60.0),
        backoff_s=seconds("STELLAROPS_SCHEDULER_BACKOFF_S", d.backoff_s, 1.0, 3600.0),
        setup_gap_s=seconds("STELLAROPS_SCHEDULER_SETUP_GAP_S", d.setup_gap_s, 0.0, 3600.0),
    )


_ALIVE_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_HOST_CHARS: Final = _ALIVE_CHARS | {"."}


def _dns_label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and set(label) <= _ALIVE_CHARS


def _peers(raw: str) -> tuple[str, ...]:
    """``stellar@10.0.0.6, stellar@10.0.0.7`` -> node names (the BEAM side renders them as atoms)."""
    peers = tuple(p.strip() for p in raw.split(","))
    for peer in peers:
        alive, at, host = peer.partition("@")
        if not at or not alive or not set(alive) <= _ALIVE_CHARS or not host or not set(host) <= _HOST_CHARS:
            raise SettingsError("STELLAROPS_CLUSTER_PEERS", raw, "must be comma-separated node names like stellar@10.0.0.6")
    return tuple(dict.fromkeys(peers))


def _dns_name(raw: str) -> str:
    if len(raw) > 253 or not all(_dns_label_ok(label) for label in raw.removesuffix(".").split(".")):
        raise SettingsError("STELLAROPS_CLUSTER_DNS", raw, "must be a DNS name like stellar-headless.ops.svc.cluster.local")
    return raw


def _ipv4(name: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw == "auto":
            found = default_route_address()
            if found is None:
                raise SettingsError(name, raw, "must be an IPv4 address: this host has no default route to find its own")
            return found
        try:
            address = ipaddress.IPv4Address(raw)
        except ValueError:
            raise SettingsError(name, raw, "must be the IPv4 address of one interface, e.g. 10.0.0.5, or auto") from None
        if address.is_unspecified:  # epmd cannot listen on 0.0.0.0 besides loopback
            raise SettingsError(name, raw, "must be the IPv4 address of one interface, e.g. 10.0.0.5 (not 0.0.0.0)")
        return str(address)

    return parse


def default_route_address() -> str | None:
    """This host's address on its default route (a container's own address), None without one:
    a UDP socket "connected" to a TEST-NET-1 address (RFC 5737) sends nothing, only routes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if ipaddress.IPv4Address(address).is_loopback else address


def _cluster(env: Mapping[str, str], node_name: str) -> ClusterSettings:
    d = ClusterSettings()
    interface = _parse(env, "STELLAROPS_DIST_INTERFACE", d.dist_interface, _ipv4("STELLAROPS_DIST_INTERFACE"))
    try:
        host: ipaddress.IPv4Address | None = ipaddress.IPv4Address(node_name.partition("@")[2])
    except ValueError:  # a host name: where it resolves is the operator's to keep right
        host = None if not node_name.endswith("@auto") else ipaddress.IPv4Address(interface)
    if host is not None and str(host) != interface:  # unset too: a node named stellar@10.0.0.5 on loopback is unreachable
        raise SettingsError("STELLAROPS_DIST_INTERFACE", _text(env, "STELLAROPS_DIST_INTERFACE"),
                            f"must be the address in the node name ({node_name}): peers and Python nodes connect there")  # fmt: skip
    low = _parse(env, "STELLAROPS_DIST_PORT_MIN", None, _int_in("STELLAROPS_DIST_PORT_MIN", 1024, 65535))
    high = _parse(env, "STELLAROPS_DIST_PORT_MAX", None, _int_in("STELLAROPS_DIST_PORT_MAX", 1024, 65535))
    if high is not None and (low is None or high < low):
        raise SettingsError("STELLAROPS_DIST_PORT_MAX", str(high), "must be set with STELLAROPS_DIST_PORT_MIN and be >= it")
    dns = _parse(env, "STELLAROPS_CLUSTER_DNS", d.dns, _dns_name)
    if dns is not None and host is None:  # A records give addresses: every peer is <alive>@<ip>
        raise SettingsError("STELLAROPS_CLUSTER_DNS", dns, f"must go with a node name holding this node's IPv4 address, not {node_name}")
    return ClusterSettings(
        peers=_parse(env, "STELLAROPS_CLUSTER_PEERS", d.peers, _peers),
        dns=dns,
        dns_poll_s=_parse(env, "STELLAROPS_CLUSTER_DNS_POLL_S", d.dns_poll_s, _float_in("STELLAROPS_CLUSTER_DNS_POLL_S", 0.1, 3600.0)),
        size=_parse(env, "STELLAROPS_CLUSTER_SIZE", d.size, _int_in("STELLAROPS_CLUSTER_SIZE", 1, 1000)),
        failure_ms=_parse(env, "STELLAROPS_CLUSTER_FAILURE_MS", d.failure_ms, _int_in("STELLAROPS_CLUSTER_FAILURE_MS", 300, 600_000)),
        dist_interface=interface,
        dist_ports=None if low is None else (low, low if high is None else high),
        py_nodes_local=_parse(env, "STELLAROPS_PY_NODES_LOCAL", "true", _choice("STELLAROPS_PY_NODES_LOCAL", ("true", "false"))) == "true",
        tls_dir=_parse(env, "STELLAROPS_DIST_TLS_DIR", None, _tls_dir),
    )


TLS_FILES: Final = ("ca.crt", "tls.crt", "tls.key")  # as a Kubernetes TLS secret (cert-manager) names them


def _tls_dir(raw: str) -> Path:
    """The folder of the distribution's certificates, checked: each file readable and PEM."""
    folder = Path(raw).absolute()
    allowed = "must be a folder holding ca.crt, tls.crt and tls.key (PEM)"
    for name, marker in zip(TLS_FILES, ("CERTIFICATE", "CERTIFICATE", "PRIVATE KEY"), strict=True):
        try:
            text = (folder / name).read_text(errors="replace")
        except OSError as exc:
            raise SettingsError("STELLAROPS_DIST_TLS_DIR", raw, f"{allowed}: {name}: {exc.strerror}") from None
        if f"-----BEGIN {marker}" not in text and not (marker == "PRIVATE KEY" and "PRIVATE KEY-----" in text):
            raise SettingsError("STELLAROPS_DIST_TLS_DIR", raw, f"{allowed}: {name} holds no PEM {marker.lower()}")
    return folder


def _log_format(env: Mapping[str, str]) -> Literal["json", "text"]:
    # Text by default: `make run` in a terminal; deployments (the container image) set json.
    value = _parse(env, "STELLAROPS_LOG_FORMAT", "text", _choice("STELLAROPS_LOG_FORMAT", ("json", "text")))
    return "json" if value == "json" else "text"


def load() -> Settings:
    """The settings of this process (reads ``os.environ``: the only place that does)."""
    return Settings.from_env(os.environ)
