"""Persistence: PostgreSQL through psycopg 3, one connection pool, versioned migrations.

``Database`` (pool.py) owns every connection; the repositories borrow them per unit of work.
With DATABASE_URL unset, ``EmbeddedServer`` runs PostgreSQL under ``$STELLAROPS_HOME/pg``.

Errors::

    DbError
     ├── DatabaseUnavailable   the server cannot be reached: retry later; nothing was acknowledged
     ├── ValidationError       bad input (``.field`` names it); the transaction changed nothing
     │    └── NotFound         the thing named by ``.field`` does not exist
     ├── MigrationError        a migration failed (rolled back) or an applied file changed
     └── EmbeddedServerError   the embedded PostgreSQL could not be set up, started or stopped
"""

from .alarms import AlarmRecord, Alarms, Severity
from .audit import AuditEntry, AuditLog, append_audit
from .commands import COMMAND_KINDS, Command, CommandLedger, CommandStatus
from .errors import (
    DatabaseUnavailable,
    DbError,
    EmbeddedServerError,
    MigrationError,
    NotFound,
    ValidationError,
    describe_target,
)
from .migrate import Migration, applied_versions, load_migrations, migrate
from .pool import Connection, Database
from .satellites import SatelliteRecord, Satellites, TleRecord
from .seed import SeedReport, seed
from .server import EmbeddedServer, running_database
from .stations import Station, Stations, StationSpec
from .telemetry import TelemetryRow, TelemetryStats, TelemetryWriter
from .telemetry_columns import TelemetryColumns
from .tokens import ROLES, ApiToken, ApiTokens, Role, ensure_admin_token, hash_token, role_rank

__all__ = [
    "COMMAND_KINDS",
    "ROLES",
    "AlarmRecord",
    "Alarms",
    "ApiToken",
    "ApiTokens",
    "AuditEntry",
    "AuditLog",
    "Command",
    "CommandLedger",
    "CommandStatus",
    "Connection",
    "Database",
    "DatabaseUnavailable",
    "DbError",
    "EmbeddedServer",
    "EmbeddedServerError",
    "Migration",
    "MigrationError",
    "NotFound",
    "Role",
    "SatelliteRecord",
    "Satellites",
    "SeedReport",
    "Severity",
    "Station",
    "StationSpec",
    "Stations",
    "TelemetryColumns",
    "TelemetryRow",
    "TelemetryStats",
    "TelemetryWriter",
    "TleRecord",
    "ValidationError",
    "append_audit",
    "applied_versions",
    "describe_target",
    "ensure_admin_token",
    "hash_token",
    "load_migrations",
    "migrate",
    "role_rank",
    "running_database",
    "seed",
]
