"""``stellarops up`` as the container image runs it: the BEAM release with its own erts
(``STELLAROPS_RELEASE``) and the Python nodes ``STELLAROPS_ROLES`` asks for, rendered into the
``sys.config`` it writes from ``rel/sys.config.src``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from erl_support import unique_name
from stack import CLI, ROOT, UpStack

from py_nodes.settings import Settings
from py_nodes.up import Release, UpError, py_nodes_config, render_sys_config

PROD_RELEASE = ROOT / "_build" / "prod" / "rel" / "stellar"
STELLAR_EBIN = ROOT / "_build" / "default" / "lib" / "stellar" / "ebin"
# What `up` puts in the environment it renders sys.config.src with (a value each file uses).
ENV = {"STELLAROPS_LOG_FORMAT": "text"}


def test_roles_become_the_py_nodes_of_the_rendered_sys_config(tmp_path: Path) -> None:
    """A real erl reads the rendered file, and stellar_config expands the same nodes."""
    roles = Settings.from_env({"STELLAROPS_ROLES": "sats=2,gateway=1"}).up.roles
    config = render_sys_config(ENV, tmp_path, py_nodes=py_nodes_config(roles))
    expr = (
        "application:load(stellar), {ok, P} = application:get_env(stellar, py_nodes),"
        " {ok, N} = stellar_config:validate_py_nodes(P, \"h\"),"
        " io:format(\"~s\", [lists:join(\" \", [atom_to_list(maps:get(name, X)) || X <- N])]), halt()."
    )
    done = subprocess.run(
        ["erl", "-noshell", "-config", str(config), "-pa", str(STELLAR_EBIN), "-eval", expr],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["sats1@h", "sats2@h", "gateway1@h"]


def test_without_roles_the_app_defaults_stay(tmp_path: Path) -> None:
    text = render_sys_config(ENV, tmp_path, py_nodes=py_nodes_config(None)).read_text()
    assert "{stellar, []}" in text and "py_nodes" not in text.split("{stellar,", 1)[1]


def test_a_variable_the_environment_lacks_takes_its_default(tmp_path: Path) -> None:
    """The benches and tests render with an environment of their own: the log format defaults."""
    text = render_sys_config({}, tmp_path, py_nodes=py_nodes_config(None)).read_text()
    assert '#{format => "text"' in text and "${" not in text


def test_a_folder_that_is_no_release_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(UpError, match=r"^STELLAROPS_RELEASE=.*: not a release"):
        Release(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAROPS_") and k != "DATABASE_URL"}
    env.update(STELLAROPS_HOME=str(tmp_path / "home"), STELLAROPS_RELEASE=str(tmp_path))
    done = subprocess.run([*CLI, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "not a release" in done.stderr, done.stderr
    assert not (tmp_path / "home").exists()  # no state folder, no database: nothing started


@pytest.mark.erlang
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_up_runs_the_release_with_the_roles_it_is_given(tmp_path: Path) -> None:
    """The image's way: the release's own erts and boot file, only the nodes asked for."""
    subprocess.run(["rebar3", "as", "prod", "release"], cwd=ROOT, check=True, capture_output=True, timeout=180)
    stack = UpStack(
        tmp_path / "home", unique_name("stellar_rel").partition("@")[0],
        STELLAROPS_RELEASE=str(PROD_RELEASE), STELLAROPS_ROLES="sats=1,store=1,gateway=1",
        STELLAROPS_DEMO_SATELLITES="3",
    ).start(timeout_s=180, stderr=(tmp_path / "up.err").open("w"))  # fmt: skip
    try:
        status = subprocess.run([*CLI, "status"], env=stack.env, capture_output=True, text=True, timeout=60, check=True)
        report = json.loads(status.stdout)
        assert sorted(n["role"] for n in report["nodes"]) == ["beam", "gateway", "sats", "store"]
        assert report["satellites"]["total"] == 3
        beam_pid = next(n["os_pid"] for n in report["nodes"] if n["role"] == "beam")
        argv = Path(f"/proc/{beam_pid}/cmdline").read_bytes().split(b"\0")
        # The release's erts (erl execs beam.smp, whose argv names its root and boot file).
        assert f"{PROD_RELEASE}/releases/".encode() in b" ".join(argv), argv
    finally:
        assert stack.stop() == 0
