"""API tokens for the HTTP gateway: bearer secrets with a role, stored as SHA-256 hashes.

A secret is shown once, when it is made (``create`` returns it); the database keeps only its
hash, which is also what ``lookup`` searches by. Roles are ordered: ``viewer`` < ``operator`` <
``admin``. ``ensure_admin_token`` gives a fresh installation its first admin token, in a file of
mode 0600 (``$STELLAROPS_HOME/admin-token``), and re-registers that file's token in a database
that does not know it (a new database under the same state folder).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, get_args

import psycopg
from psycopg.rows import class_row

from .audit import append_audit
from .errors import ValidationError
from .pool import Database
from .values import check_actor, check_text, refused

__all__ = [
    "ROLES",
    "ApiToken",
    "ApiTokens",
    "Role",
    "ensure_admin_token",
    "hash_token",
    "new_secret",
    "role_rank",
]

Role = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
SECRET_PREFIX: Final = "sto_"
MAX_SECRET_CHARS: Final = 256
_COLUMNS: Final = "id, name, role, created_by, created_at, revoked_at"


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    role: Role
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def role_rank(role: str) -> int:
    """0 for viewer, 1 for operator, 2 for admin; ValueError for anything else."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}") from None


def new_secret() -> str:
    """A new token secret: the prefix and 43 URL-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).digest()


class ApiTokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, role: str, name: str, *, actor: str) -> tuple[ApiToken, str]:
        """A new token: ``(record, secret)``. The secret is not stored and cannot be shown again."""
        if role not in ROLES:
            raise ValidationError("role", f"{role!r:.40} is not one of {', '.join(ROLES)}")
        check_text(name, "name", max_chars=128)
        check_actor(actor)
        secret = new_secret()
        return await self._insert(role, name, hash_token(secret), actor), secret

    async def register(self, role: str, name: str, secret: str, *, actor: str) -> ApiToken | None:
        """Store a token whose secret already exists (a token file): the record, or None when
        a token with this secret is already known."""
        if role not in ROLES:
            raise ValidationError("role", f"{role!r:.40} is not one of {', '.join(ROLES)}")
        check_text(secret, "secret", max_chars=MAX_SECRET_CHARS)
        try:
            return await self._insert(role, name, hash_token(secret), actor)
        except ValidationError as exc:
            if exc.field == "token_hash":
                return None
            raise

    async def _insert(self, role: str, name: str, token_hash: bytes, actor: str) -> ApiToken:
        async with self._db.transaction() as conn:
            cur = conn.cursor(row_factory=class_row(ApiToken))
            try:
                await cur.execute(
                    "INSERT INTO api_tokens (name, role, token_hash, created_by) VALUES (%s, %s, %s, %s)"
                    f" RETURNING {_COLUMNS}",
                    (name, role, token_hash, actor),
                )
            except psycopg.errors.UniqueViolation:
                raise ValidationError("token_hash", "a token with this secret exists") from None
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise refused(exc) from None
            token = await cur.fetchone()
            assert token is not None
            await append_audit(conn, actor, "api_token.create", "api_token", str(token.id), {"name": name, "role": role})
        return token

    async def lookup(self, secret: str) -> ApiToken | None:
        """The live (not revoked) token with this secret, or None."""
        if not isinstance(secret, str) or not 0 < len(secret) <= MAX_SECRET_CHARS:
            return None
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(ApiToken))
            await cur.execute(
                f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL",
                (hash_token(secret),),
            )
            return await cur.fetchone()

    async def revoke(self, token_id: int, *, actor: str) -> bool:
        """Revoke a token; False when there is no live token with this id."""
        check_actor(actor)
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL RETURNING name",
                (token_id,),
            )
            row = await cur.fetchone()
            if row is None:
                return False
            await append_audit(conn, actor, "api_token.revoke", "api_token", str(token_id), {"name": row[0]})
        return True

    async def list_all(self) -> list[ApiToken]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(ApiToken))
            await cur.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY id")
            return await cur.fetchall()


async def ensure_admin_token(tokens: ApiTokens, path: Path, *, actor: str = "system") -> str | None:
    """Make sure the admin token in ``path`` exists (file, mode 0600) and is known to the
    database. Returns the secret when it was generated now (to show it once), else None."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ValidationError("admin_token", f"{path} is readable by others (mode {mode:o}); chmod 600 it")
        secret = path.read_text().strip()
        await tokens.register("admin", "admin (first run)", secret, actor=actor)
        return None
    secret = new_secret()
    await tokens.register("admin", "admin (first run)", secret, actor=actor)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    tmp.rename(path)
    return secret
