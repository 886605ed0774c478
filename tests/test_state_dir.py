"""The state folder: its permissions (decided in py_nodes/state_dir.py only), the cookie made once
by commands started together, and the lock that gives one ``stellarops up`` the folder."""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from py_nodes.state_dir import AlreadyRunning, StateDir, StateDirError, folder_mode

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("before", "after"),
    [(0o700, 0o700), (0o701, 0o701), (0o711, 0o711), (0o755, 0o711), (0o777, 0o711), (0o500, 0o700), (0o706, 0o700), (0o707, 0o701)],
)
def test_folder_mode_keeps_traverse_bits_and_closes_read_write(before: int, after: int) -> None:
    assert folder_mode(stat.S_IFDIR | before) == after


def test_prepare_gives_the_folder_its_mode_and_private_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STELLAROPS_COOKIE", raising=False)
    root = tmp_path / "home"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    state = StateDir(root)
    cookie = state.prepare()
    assert stat.S_IMODE(root.stat().st_mode) == 0o711  # x kept, r/w for others gone
    assert stat.S_IMODE(state.cookie_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.erlang_home.stat().st_mode) == 0o700
    erlang_cookie = state.erlang_home / ".erlang.cookie"
    assert erlang_cookie.read_bytes() == cookie and stat.S_IMODE(erlang_cookie.stat().st_mode) == 0o400
    assert len(cookie) == 32 and cookie.isalnum()
    assert state.prepare() == cookie  # idempotent
    # A cookie given in the environment replaces the Erlang home's copy, atomically.
    from_env = StateDir(root, b"from-env")
    assert from_env.prepare() == b"from-env" and erlang_cookie.read_bytes() == b"from-env"
    assert sorted(p.name for p in state.erlang_home.iterdir()) == [".erlang.cookie"]  # no temporary left


def _make_cookie(root: str, go: multiprocessing.synchronize.Event, results: multiprocessing.Queue[str]) -> None:
    go.wait()
    try:
        results.put(StateDir(Path(root)).cookie().decode())
    except Exception as exc:  # reported to the test, which fails with it
        results.put(f"error: {type(exc).__name__}: {exc}")


def test_commands_started_together_make_one_cookie(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`stellarops status` while `stellarops up` starts: both create the cookie. Processes
    released at once, many rounds: every one gets the same cookie, none an error or an empty one."""
    monkeypatch.delenv("STELLAROPS_COOKIE", raising=False)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(15):
        root = tmp_path / f"home{round_}"
        go, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_make_cookie, args=(str(root), go, results)) for _ in range(8)]
        for proc in procs:
            proc.start()
        go.set()
        got = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(60)
        assert not [g for g in got if g.startswith("error")], got
        assert len(set(got)) == 1 and len(got[0]) == 32, got
        assert (root / "cookie").read_text() == got[0]
        assert stat.S_IMODE((root / "cookie").stat().st_mode) == 0o600
        assert sorted(p.name for p in root.iterdir()) == ["cookie"]  # no temporary left


def test_empty_cookie_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STELLAROPS_COOKIE", raising=False)
    (tmp_path / "cookie").write_text("")
    with pytest.raises(StateDirError, match=r"cookie file .* is empty: remove it"):
        StateDir(tmp_path).cookie()


_HOLD = """
import sys
from pathlib import Path
from py_nodes.state_dir import StateDir
with StateDir(Path(sys.argv[1])).owner_lock("holder@127.0.0.1"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_owner_lock_is_exclusive_and_names_the_owner(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(AlreadyRunning, match=rf"already running: pid {holder.pid}, node holder@127\.0\.0\.1") as info:
            with StateDir(tmp_path).owner_lock("second@127.0.0.1"):
                pytest.fail("got the lock held by another process")
        assert info.value.pid == holder.pid
    finally:
        holder.stdin.close()
        assert holder.wait(30) == 0
    # The owner is gone (however it ended): the folder is free again.
    with StateDir(tmp_path).owner_lock("third@127.0.0.1"):
        assert (tmp_path / "up.lock").read_text() == f"{os.getpid()} third@127.0.0.1\n"


def test_prepare_command_for_the_scripts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STELLAROPS_COOKIE"} | {"STELLAROPS_HOME": str(tmp_path / "h")}
    done = subprocess.run([sys.executable, "-m", "py_nodes.state_dir", "prepare"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cookie = (tmp_path / "h" / "cookie").read_text()
    assert f"created a secret cookie in {tmp_path / 'h' / 'cookie'}" in done.stderr
    assert cookie not in done.stderr + done.stdout
    assert (tmp_path / "h" / "erlang-home" / ".erlang.cookie").read_text() == cookie
    bad = subprocess.run([sys.executable, "-m", "py_nodes.state_dir"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage: python -m py_nodes.state_dir prepare" in bad.stderr
