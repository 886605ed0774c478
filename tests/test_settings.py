"""The settings module: defaults, one-line errors naming the variable, the README's table."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from py_nodes import settings as settings_module
from py_nodes.settings import DEFAULT_DASHBOARD_DIR, VARIABLES, Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "py_nodes"]

# A value no variable with a parser accepts, per variable (free-text variables have none).
GARBAGE = {
    "STELLAROPS_NODE_NAME": "no-at-sign",
    "STELLAROPS_BEAM_NODE": "stellar",
    "STELLAROPS_LOG_LEVEL": "loud",
    "STELLAROPS_LOG_FORMAT": "xml",
    "STELLAROPS_DEMO_SATELLITES": "abc",
    "STELLAROPS_START_TIMEOUT": "-1",
    "STELLAROPS_TICK_S": "0",
    "ERL_EPMD_PORT": "70000",
    "STELLAROPS_HTTP_PORT": "http",
    "STELLAROPS_HTTP_MAX_BODY": "12",
    "STELLAROPS_SSE_QUEUE": "0",
    "STELLAROPS_SSE_HEARTBEAT_S": "soon",
    "STELLAROPS_SAT_CACHE_S": "-5",
    "STELLAROPS_SSE_WRITE_TIMEOUT_S": "0",
    "STELLAROPS_SSE_SEND_BUFFER": "big",
    "STELLAROPS_HTTP_ANONYMOUS_ROLE": "admin",
    "STELLAROPS_ROLES": "sats=2,gateway",
    "STELLAROPS_COOKIE_FILE": "/nonexistent/erlang_cookie",
    "DATABASE_PASSWORD_FILE": "/nonexistent/db_password",
    "STELLAROPS_SCHEDULER_HORIZON_S": "60",
    "STELLAROPS_SCHEDULER_FREEZE_S": "-1",
    "STELLAROPS_SCHEDULER_BUDGET_S": "0",
    "STELLAROPS_SCHEDULER_BACKOFF_S": "later",
    "STELLAROPS_SCHEDULER_SETUP_GAP_S": "1e9",
    "STELLAROPS_CLUSTER_PEERS": "stellar@10.0.0.6,stellar",
    "STELLAROPS_CLUSTER_DNS": "stellar headless",
    "STELLAROPS_CLUSTER_DNS_POLL_S": "0",
    "STELLAROPS_CLUSTER_SIZE": "0",
    "STELLAROPS_CLUSTER_FAILURE_MS": "3s",
    "STELLAROPS_DIST_INTERFACE": "eth0",
    "STELLAROPS_DIST_PORT_MIN": "80",
    "STELLAROPS_DIST_PORT_MAX": "9100",  # without STELLAROPS_DIST_PORT_MIN
    "STELLAROPS_PY_NODES_LOCAL": "maybe",
    "STELLAROPS_DIST_TLS_DIR": "/nonexistent/dist-tls",
    "STELLAROPS_PG_SHARED_BUFFERS_MB": "8",
}


def test_defaults_from_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert s.up.node_name == "stellar@127.0.0.1"
    assert s.up.demo_satellites == 24
    assert s.up.start_timeout_s == 60.0
    assert s.node.home == (Path.cwd() / ".stellarops").absolute()
    assert s.node.cookie is None and s.node.beam_node is None
    assert s.node.log_level == "INFO" and s.node.tick_s == 1.0
    assert s.database.url is None and s.database.pg_os_user == "stellarops-pg"
    assert s.database.pg_shared_buffers_mb == 1024
    assert Settings.from_env({"STELLAROPS_PG_SHARED_BUFFERS_MB": "256"}).database.pg_shared_buffers_mb == 256
    assert (s.epmd.host, s.epmd.port) == ("127.0.0.1", 4369)
    g = s.gateway
    assert (g.host, g.port, g.max_body_bytes, g.sse_queue_events) == ("127.0.0.1", 8080, 65536, 25_000)
    assert g.access_log == "-"  # no state folder named: stdout
    named = Settings.from_env({"STELLAROPS_HOME": "/srv/so"}).gateway
    assert named.access_log == "/srv/so/log/gateway-access.jsonl"
    assert g.dashboard_dir == DEFAULT_DASHBOARD_DIR and g.anonymous_role is None
    assert s.deprecations == ()


def test_values_are_parsed() -> None:
    s = Settings.from_env(
        {
            "STELLAROPS_HOME": "/srv/so",
            "STELLAROPS_COOKIE": " c00kie ",
            "STELLAROPS_NODE_NAME": "stellar@10.0.0.7",
            "STELLAROPS_DIST_INTERFACE": "10.0.0.7",  # else it would listen on loopback: refused
            "STELLAROPS_LOG_LEVEL": "debug",
            "STELLAROPS_TICK_S": "0.25",
            "ERL_EPMD_ADDRESS": "10.0.0.7, 127.0.0.1",
            "STELLAROPS_CORS_ORIGINS": "https://a.example, https://b.example",
            "STELLAROPS_ACCESS_LOG": "off",
            "STELLAROPS_HTTP_ANONYMOUS_ROLE": "Viewer",
            "DATABASE_URL": "postgresql://db/stellar",
        }
    )
    assert s.node.home == Path("/srv/so") and s.node.cookie == b"c00kie"
    assert s.up.node_name == "stellar@10.0.0.7" and s.node.log_level == "DEBUG" and s.node.tick_s == 0.25
    assert s.epmd.host == "10.0.0.7"
    assert s.gateway.cors_origins == ("https://a.example", "https://b.example")
    assert s.gateway.access_log is None and s.gateway.anonymous_role == "viewer"
    assert s.database.url == "postgresql://db/stellar"


def test_the_old_node_name_variable_still_works_with_a_deprecation_line() -> None:
    s = Settings.from_env({"STELLAR_NODE_NAME": "stellar_old@127.0.0.1"})
    assert s.up.node_name == "stellar_old@127.0.0.1"
    assert s.deprecations == ("STELLAR_NODE_NAME is deprecated: set STELLAROPS_NODE_NAME instead",)
    both = Settings.from_env({"STELLAR_NODE_NAME": "a@h", "STELLAROPS_NODE_NAME": "b@h"})
    assert both.up.node_name == "b@h" and both.deprecations == ()
    with pytest.raises(SettingsError, match=r"^STELLAR_NODE_NAME='bad'"):
        Settings.from_env({"STELLAR_NODE_NAME": "bad"})


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_a_bad_value_is_one_line_naming_the_variable(name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: GARBAGE[name]})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={GARBAGE[name]!r}: ")
    assert ("must be" in message) and caught.value.name == name


def test_every_parsed_variable_has_a_garbage_case() -> None:
    """A new variable with a parser must be added to GARBAGE (free text ones are listed here)."""
    free_text = {
        "STELLAROPS_HOME", "STELLAROPS_COOKIE", "STELLAROPS_PY", "STELLAROPS_PG_OS_USER", "DATABASE_URL",
        "ERL_EPMD_ADDRESS", "STELLAROPS_HTTP_HOST", "STELLAROPS_CORS_ORIGINS", "STELLAROPS_ACCESS_LOG",
        "STELLAROPS_DASHBOARD_DIR", "STELLAROPS_RELEASE",
    }  # fmt: skip
    assert {v.name for v in VARIABLES} == free_text | set(GARBAGE)


def test_the_readme_configuration_table_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    in_table = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.M))
    assert in_table == {v.name for v in VARIABLES}


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = []
    for folder in ("py_nodes", "web", "orbital"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "settings.py" and path.parent.name == "py_nodes":
                continue
            text = path.read_text()
            if re.search(r"os\.environ(?!\w)|os\.getenv\(", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


SUBCOMMANDS = [
    ["--help"],
    ["up"],
    ["status"],
    ["migrate"],
    ["seed"],
    ["token", "create", "--role", "viewer"],
    ["node", "--role", "echo", "--name", "py_x@127.0.0.1"],
    ["propagate", "--help"],
    ["passes", "--help"],
]


@pytest.mark.parametrize("name", ["STELLAROPS_DEMO_SATELLITES", "STELLAROPS_TICK_S", "STELLAROPS_HTTP_PORT", "STELLAR_NODE_NAME"])
def test_every_subcommand_refuses_a_bad_variable_in_one_line(name: str, tmp_path: Path) -> None:
    """Nothing starts, nothing is written: the settings are read before anything else."""
    value = GARBAGE.get(name, "no-at-sign")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STELLAROPS_", "STELLAR_")) and k != "DATABASE_URL"}
    env.update(STELLAROPS_HOME=str(tmp_path / "home"), **{name: value})
    for args in SUBCOMMANDS:
        done = subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stdout == ""
        assert done.stderr == f"stellarops: {name}={value!r}: {done.stderr.split(': ', 2)[2]}"
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "home").exists()


def test_the_deprecated_node_name_still_works_and_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STELLAROPS_", "STELLAR_"))}
    env.update(STELLAROPS_HOME=str(tmp_path / "home"), STELLAR_NODE_NAME="stellar_gone@127.0.0.1")
    done = subprocess.run([*CLI, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert done.stderr.splitlines()[0] == "stellarops: warning: STELLAR_NODE_NAME is deprecated: set STELLAROPS_NODE_NAME instead"
    assert "stellar_gone@127.0.0.1" in done.stderr  # the status asked the node the old name gave


def test_cluster_defaults_keep_everything_on_loopback() -> None:
    c = Settings.from_env({}).cluster
    assert (c.peers, c.dns, c.dns_poll_s, c.dist_interface, c.dist_ports) == ((), None, 5.0, "127.0.0.1", None)


def test_cluster_settings_are_parsed() -> None:
    c = Settings.from_env({
        "STELLAROPS_NODE_NAME": "stellar@10.0.0.5", "STELLAROPS_DIST_INTERFACE": "10.0.0.5",
        "STELLAROPS_CLUSTER_PEERS": " stellar@10.0.0.6 ,stellar@10.0.0.7,stellar@10.0.0.6",
        "STELLAROPS_CLUSTER_DNS": "stellar-headless.ops.svc.cluster.local.", "STELLAROPS_CLUSTER_DNS_POLL_S": "0.5",
        "STELLAROPS_DIST_PORT_MIN": "9100", "STELLAROPS_DIST_PORT_MAX": "9105",
    }).cluster  # fmt: skip
    assert c.peers == ("stellar@10.0.0.6", "stellar@10.0.0.7")
    assert c.dns == "stellar-headless.ops.svc.cluster.local." and c.dns_poll_s == 0.5
    assert c.dist_interface == "10.0.0.5" and c.dist_ports == (9100, 9105)
    assert Settings.from_env({"STELLAROPS_DIST_PORT_MIN": "9100"}).cluster.dist_ports == (9100, 9100)
    # A host name in the node name: the interface is not compared with it.
    named = Settings.from_env({"STELLAROPS_NODE_NAME": "stellar@stellar-0.ops", "STELLAROPS_DIST_INTERFACE": "10.0.0.5"})
    assert named.cluster.dist_interface == "10.0.0.5"


@pytest.mark.parametrize(
    ("env", "name", "says"),
    [
        ({"STELLAROPS_DIST_PORT_MIN": "9105", "STELLAROPS_DIST_PORT_MAX": "9100"}, "STELLAROPS_DIST_PORT_MAX", ">= it"),
        ({"STELLAROPS_DIST_INTERFACE": "0.0.0.0", "STELLAROPS_NODE_NAME": "s@h"}, "STELLAROPS_DIST_INTERFACE", "not 0.0.0.0"),
        ({"STELLAROPS_DIST_INTERFACE": "10.0.0.5"}, "STELLAROPS_DIST_INTERFACE", "the address in the node name"),
        ({"STELLAROPS_NODE_NAME": "stellar@10.0.0.5"}, "STELLAROPS_DIST_INTERFACE", "the address in the node name"),
        ({"STELLAROPS_CLUSTER_PEERS": "stellar@10.0.0.6,'x'@h"}, "STELLAROPS_CLUSTER_PEERS", "node names"),
        ({"STELLAROPS_CLUSTER_PEERS": "stellar@10.0.0.6,"}, "STELLAROPS_CLUSTER_PEERS", "node names"),
        ({"STELLAROPS_CLUSTER_DNS": "a..b"}, "STELLAROPS_CLUSTER_DNS", "DNS name"),
        ({"STELLAROPS_CLUSTER_DNS": "s.local", "STELLAROPS_NODE_NAME": "stellar@stellar-0.s.local"}, "STELLAROPS_CLUSTER_DNS", "IPv4 address"),
        ({"STELLAROPS_CLUSTER_DNS": "x" * 64 + ".local"}, "STELLAROPS_CLUSTER_DNS", "DNS name"),
    ],
)
def test_cluster_settings_that_cannot_work_are_refused(env: dict[str, str], name: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.name == name and says in str(caught.value) and "\n" not in str(caught.value)


def test_auto_names_the_node_after_its_own_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container knows its address only when it runs: `auto` finds it (the default route's)."""
    monkeypatch.setattr(settings_module, "default_route_address", lambda: "10.89.0.7")
    s = Settings.from_env({"STELLAROPS_NODE_NAME": "stellar@auto", "STELLAROPS_DIST_INTERFACE": "auto", "STELLAROPS_CLUSTER_DNS": "stellar"})
    assert s.up.node_name == "stellar@10.89.0.7" and s.cluster.dist_interface == "10.89.0.7" and s.cluster.dns == "stellar"
    assert Settings.from_env({"STELLAROPS_NODE_NAME": "stellar@auto"}).up.node_name == "stellar@127.0.0.1"
    monkeypatch.setattr(settings_module, "default_route_address", lambda: None)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"STELLAROPS_DIST_INTERFACE": "auto"})
    assert caught.value.name == "STELLAROPS_DIST_INTERFACE" and "no default route" in str(caught.value)


def test_the_default_route_address_is_this_hosts_own() -> None:
    """Not loopback, and one of this host's interfaces: a socket can listen on it."""
    address = settings_module.default_route_address()
    if address is None:
        pytest.skip("this machine has no default route")
    with socket.socket() as sock:
        sock.bind((address, 0))
