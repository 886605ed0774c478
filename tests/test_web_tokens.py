"""API tokens: the repository, the admin token file, the CLI, and the gateway's token cache."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from py_nodes.db import (
    ApiTokens,
    Database,
    ValidationError,
    ensure_admin_token,
    hash_token,
    role_rank,
)
from web.auth import Authenticator
from web.dbgate import DatabaseGate

CLI = [sys.executable, "-m", "py_nodes"]


async def test_create_lookup_revoke(db: Database) -> None:
    tokens = ApiTokens(db)
    token, secret = await tokens.create("operator", "ci bot", actor="test")
    assert secret.startswith("sto_") and len(secret) > 40
    found = await tokens.lookup(secret)
    assert found is not None and (found.id, found.role, found.name) == (token.id, "operator", "ci bot")
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT token_hash FROM api_tokens WHERE id = %s", (token.id,))).fetchone()
    assert row is not None and bytes(row[0]) == hash_token(secret)  # only the hash is stored
    assert await tokens.lookup(secret + "x") is None
    assert await tokens.lookup("") is None and await tokens.lookup("x" * 1000) is None
    assert await tokens.revoke(token.id, actor="test") is True
    assert await tokens.lookup(secret) is None
    assert await tokens.revoke(token.id, actor="test") is False
    with pytest.raises(ValidationError) as info:
        await tokens.create("root", "x", actor="test")
    assert info.value.field == "role"
    assert [role_rank(r) for r in ("viewer", "operator", "admin")] == [0, 1, 2]


async def test_admin_token_file(db: Database, tmp_path: Path) -> None:
    tokens, path = ApiTokens(db), tmp_path / "admin-token"
    secret = await ensure_admin_token(tokens, path)
    assert secret is not None and path.read_text().strip() == secret
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    token = await tokens.lookup(secret)
    assert token is not None and token.role == "admin"
    assert await ensure_admin_token(tokens, path) is None  # not shown again
    assert len(await tokens.list_all()) == 1
    path.chmod(0o644)
    with pytest.raises(ValidationError, match="readable by others"):
        await ensure_admin_token(tokens, path)


async def test_admin_token_file_is_registered_in_a_new_database(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"sto_made-elsewhere\n")
    os.close(fd)
    assert await ensure_admin_token(ApiTokens(db), path) is None
    token = await ApiTokens(db).lookup("sto_made-elsewhere")
    assert token is not None and token.role == "admin"


async def test_authenticator_caches_answers(db: Database) -> None:
    tokens = ApiTokens(db)
    token, secret = await tokens.create("viewer", "cached", actor="test")
    auth = Authenticator(tokens, DatabaseGate(db), cache_s=60)
    principal = await auth.principal(secret)
    assert principal is not None and principal.role == "viewer" and principal.actor.startswith(f"token:{token.id}:")
    await tokens.revoke(token.id, actor="test")
    assert await auth.principal(secret) is not None  # cached for cache_s
    auth.forget()
    assert await auth.principal(secret) is None


def test_token_create_cli(db_conninfo: str, tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL=db_conninfo, STELLAROPS_HOME=str(tmp_path))
    run = subprocess.run([*CLI, "token", "create", "--role", "operator", "--name", "deploy"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    secret = run.stdout.strip()
    assert secret.startswith("sto_") and secret not in run.stderr and "operator" in run.stderr
    bad = subprocess.run([*CLI, "token", "create", "--role", "root"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

    async def check() -> None:
        async with Database(db_conninfo) as database:
            token = await ApiTokens(database).lookup(secret)
            assert token is not None and (token.role, token.name) == ("operator", "deploy")
            assert token.created_by.startswith("cli:")

    asyncio.run(check())
