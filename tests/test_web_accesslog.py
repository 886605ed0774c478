"""The access log's file rotation, with real files: at its size limit the file becomes ``.1`` (one
old file kept), writing goes on in a new file, and no line is lost or written twice in between.
Its permissions: the file 0600, its folder 0700, the state folder untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from web.accesslog import AccessLog

MAX_BYTES = 2_000


def line(i: int) -> tuple[float, str, str, str, str, int, float, str | None, str | None]:
    return (1_760_000_000.0 + i, f"req-{i:05d}", "GET", f"/api/satellites/sat-{i}", "/api/satellites/{id}", 200, 0.0012, "127.0.0.1", f"sat-{i}")


def ids(path: Path) -> list[int]:
    return [int(json.loads(text)["request_id"].removeprefix("req-")) for text in path.read_text().splitlines()]


def test_rotates_at_the_size_limit_and_keeps_one_old_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "access.log"
    old = Path(str(path) + ".1")
    log = AccessLog(str(path), max_bytes=MAX_BYTES)
    line_bytes = 0
    rotations = 0
    for i in range(40):  # about 5 files' worth, one line per batch
        log.record(line(i))
        before = old.stat().st_ino if old.exists() else None
        log.flush()
        line_bytes = line_bytes or path.stat().st_size
        if old.exists() and old.stat().st_ino != before:
            rotations += 1
            # Rotated once it had gone past the limit, not before; the new file has this batch.
            assert MAX_BYTES < old.stat().st_size <= MAX_BYTES + line_bytes
            assert ids(path) == [i]
        assert path.stat().st_size <= MAX_BYTES + line_bytes
    assert rotations >= 3
    # The two files hold the newest lines, in order, each once; older ones went with the old .1.
    kept = ids(old) + ids(path)
    assert kept == list(range(40 - len(kept), 40))
    assert len(kept) > MAX_BYTES // line_bytes
    assert log.lost == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["access.log", "access.log.1"]


def test_an_existing_file_over_the_limit_is_rotated_on_the_next_batch(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    first = AccessLog(str(path), max_bytes=MAX_BYTES)
    for i in range(12):
        first.record(line(i))
    first.flush()  # one batch may go past the limit: it is checked before each write
    size = path.stat().st_size
    assert size > MAX_BYTES and not Path(str(path) + ".1").exists()
    first.record(line(12))
    first.flush()
    assert ids(Path(str(path) + ".1")) == list(range(12)) and ids(path) == [12]


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_file_and_a_folder_made_for_it_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.umask(0o022)  # the usual umask: 0644 files, 0755 folders unless we say otherwise
    monkeypatch.delenv("STELLAROPS_HOME", raising=False)
    path = tmp_path / "made" / "for" / "access.log"
    log = AccessLog(str(path), max_bytes=MAX_BYTES)
    for i in range(40):  # past the size limit: the rotated file and the new one are private too
        log.record(line(i))
        log.flush()
    assert _mode(path.parent) == 0o700 and _mode(path) == 0o600
    assert _mode(Path(str(path) + ".1")) == 0o600


def test_the_default_folder_is_tightened_but_not_the_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an older version left: 0644 in a 0755 folder. The state folder keeps its own mode
    (0711 here: the embedded PostgreSQL's user needs to traverse it)."""
    home = tmp_path / "home"
    (home / "log").mkdir(parents=True)
    home.chmod(0o711)
    (home / "log").chmod(0o755)
    path = home / "log" / "gateway-access.jsonl"
    path.write_text("")
    path.chmod(0o644)
    log = AccessLog(str(path), private_dir=home / "log")
    log.record(line(1))
    log.flush()
    assert _mode(path) == 0o600 and _mode(home / "log") == 0o700 and _mode(home) == 0o711
    assert ids(path) == [1]


def test_an_existing_folder_of_someone_else_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    log = AccessLog(str(shared / "access.log"), private_dir=tmp_path / "home" / "log")
    log.record(line(1))
    log.flush()
    assert _mode(shared) == 0o755 and _mode(shared / "access.log") == 0o600
