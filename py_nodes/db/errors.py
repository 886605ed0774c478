"""The persistence layer's exceptions, and a password-free way to name a database.

Errors::

    DbError
     ├── DatabaseUnavailable   the server cannot be reached: retry later; nothing was acknowledged
     ├── ValidationError       bad input (``.field`` names it); the transaction changed nothing
     │    └── NotFound         the thing named by ``.field`` does not exist
     ├── MigrationError        a migration failed (its transaction rolled back) or an applied file changed
     └── EmbeddedServerError   the embedded PostgreSQL could not be set up, started or stopped
"""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

__all__ = [
    "DatabaseUnavailable",
    "DbError",
    "EmbeddedServerError",
    "MigrationError",
    "NotFound",
    "ValidationError",
    "describe_target",
]


class DbError(Exception):
    """Base of every error raised by ``py_nodes.db``."""


class DatabaseUnavailable(DbError):
    """The database cannot be reached (down, refused, timed out, connection lost mid-way).

    Callers on the command path answer an error instead of acknowledging; the message names the
    target without its password.
    """


class ValidationError(DbError):
    """Bad input: ``field`` names what is wrong; nothing was written."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFound(ValidationError):
    """The object named by ``field`` does not exist."""


class MigrationError(DbError):
    """A migration could not be applied, or an applied migration's file has changed."""


class EmbeddedServerError(DbError):
    """The embedded PostgreSQL server failed; the message carries the tail of its log."""


def describe_target(conninfo: str) -> str:
    """``user@host:port/dbname`` for messages and logs: never the password."""
    try:
        params = conninfo_to_dict(conninfo)
    except Exception:  # a malformed URL: say so without echoing it (it may hold a password)
        return "<unparsable connection string>"
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    user = str(params.get("user") or "?")
    dbname = str(params.get("dbname") or user)
    return f"{user}@{host}:{port}/{dbname}"
