"""Mission tasks and their plan (migration 0007): what the scheduler plans and executes.

Life of a task: ``pending`` (not placed, ``reason`` says why) <-> ``scheduled`` (placed:
a row in ``task_placements``) -> ``running`` (its start step is in the command ledger) ->
``done`` | ``failed`` | ``cancelled``. A failed attempt goes back to ``pending`` with a backoff
(``retry_after``) while attempts remain and the deadline allows, else to ``failed``.
Every transition is a conditional UPDATE (``WHERE status IN ...``): two schedulers, or a
scheduler and a cancel, cannot both move the same task.

A step of a task becomes a ledger command whose idempotency key is ``step_key(task, attempt,
step)``: submitting it again (a new scheduler after a crash) returns the first command, so a
step runs once. ``TaskSpec.checked()`` holds the rules for new tasks (the gateway and the
shell both use it); ``Tasks.create`` adds the ones that need the database (the satellite,
station and dependency exist) and writes nothing when any fails.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import class_row

from py_nodes import vocabulary
from py_nodes.satellite.modes import Mode

from .audit import append_audit
from .errors import NotFound, ValidationError
from .pool import Connection, Database
from .stations import Station, update_station
from .values import check_actor, check_number, check_text, json_object, refused

__all__ = [
    "FINAL_STATES",
    "PlacementRow",
    "PlanRun",
    "Task",
    "TaskSpec",
    "Tasks",
    "step_key",
]

TaskState = Literal["pending", "scheduled", "running", "done", "failed", "cancelled"]
FINAL_STATES: Final = frozenset({"done", "failed", "cancelled"})
OPEN_STATES: Final = ("pending", "scheduled", "running")
MAX_DURATION_S: Final = 86_400.0
MAX_HORIZON: Final = timedelta(days=7)
MAX_CHANGES: Final = 500  # per plan run, in its audit entry  # a task must be startable within this of its submission
_SAT_ID: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_STATION_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TASK_COLUMNS: Final = (
    "t.id, t.kind, t.satellite_id, t.ground_station_id, t.args, t.priority, t.earliest_start, t.deadline,"
    " t.duration_s, t.energy_pct, t.memory_mb, t.depends_on, t.status, t.attempts, t.max_retries, t.reason,"
    " t.reason_detail, t.retry_after, t.result, t.submitted_by, t.created_at, t.updated_at, t.started_at,"
    " t.finished_at, p.satellite_id AS planned_satellite_id, p.ground_station_id AS planned_station_id,"
    " p.start_at AS planned_start, p.end_at AS planned_end, p.attempt AS planned_attempt, p.plan_run_id"
)
_FROM: Final = "tasks t LEFT JOIN task_placements p ON p.task_id = t.id"
_RUN_COLUMNS: Final = "id, at, cause, detail, holder, horizon_start, horizon_end, solve_ms, placed, unplaced, moved, value"


def step_key(task_id: int, attempt: int, step: str) -> str:
    """The ledger idempotency key of one step of one attempt of a task."""
    return f"task-{task_id}-a{attempt}-{step}"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A new task as a caller gives it. Times are timezone-aware; ``args`` per kind:

    - imaging: ``target_lat_deg``, ``target_lon_deg`` (required), ``min_el_deg`` (default 10),
      ``sunlit`` (default false); ``memory_mb`` is what it produces;
    - downlink: nothing; ``memory_mb`` is what it frees (0: what its ``depends_on`` produced);
    - maintenance: ``mode`` (default maintenance);
    - command: ``command`` (a command kind), and ``mode`` for ``set_mode``.
    """

    kind: str
    satellite_id: str | None = None  # None: any satellite that can
    ground_station_id: str | None = None  # downlink: None means any station
    args: dict[str, Any] = field(default_factory=dict)
    priority: int = 50  # 0..100, 100 most valuable
    earliest_start: datetime | None = None  # None: now
    deadline: datetime | None = None  # None: earliest start + 24 h
    duration_s: float = 60.0
    energy_pct: float = 0.0  # battery the task uses, percent
    memory_mb: float = 0.0
    depends_on: int | None = None
    max_retries: int = 3

    def checked(self, now: datetime) -> TaskSpec:
        """This spec normalised (times filled in, numbers as floats); ValidationError names the
        first bad field. ``now`` is aware UTC: deadlines must be after it."""
        if self.kind not in vocabulary.TASK_KINDS:
            raise ValidationError("kind", f"{self.kind!r:.40} is not one of {', '.join(vocabulary.TASK_KINDS)}")
        if self.satellite_id is not None:
            check_text(self.satellite_id, "satellite_id", max_chars=64, pattern=_SAT_ID)
        if self.ground_station_id is not None:
            check_text(self.ground_station_id, "ground_station_id", max_chars=64, pattern=_STATION_ID)
            if self.kind != "downlink":
                raise ValidationError("ground_station_id", "only a downlink uses a ground station")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or not 0 <= self.priority <= 100:
            raise ValidationError("priority", f"expected an integer 0..100, got {self.priority!r:.40}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or not 0 <= self.max_retries <= 100:
            raise ValidationError("max_retries", f"expected an integer 0..100, got {self.max_retries!r:.40}")
        duration_s = check_number(self.duration_s, "duration_s", 0.0, MAX_DURATION_S, low_open=True)
        energy_pct = check_number(self.energy_pct, "energy_pct", 0.0, 100.0)
        memory_mb = check_number(self.memory_mb, "memory_mb", 0.0, math.inf, high_open=True)
        if self.depends_on is not None and (isinstance(self.depends_on, bool) or not isinstance(self.depends_on, int) or self.depends_on < 1):
            raise ValidationError("depends_on", f"expected a task id (a positive integer), got {self.depends_on!r:.40}")
        earliest = _aware(self.earliest_start, "earliest_start") or now
        deadline = _aware(self.deadline, "deadline") or max(earliest, now) + timedelta(hours=24)
        if deadline <= now:
            raise ValidationError("deadline", f"{deadline.isoformat()} is in the past")
        if deadline <= earliest:
            raise ValidationError("deadline", "must be after earliest_start")
        if earliest - now > MAX_HORIZON:
            raise ValidationError("earliest_start", f"more than {MAX_HORIZON.days} days ahead")
        if (deadline - max(earliest, now)).total_seconds() < duration_s:
            raise ValidationError("duration_s", f"{duration_s:g} s does not fit between the start and the deadline")
        args = _checked_args(self.kind, self.args)
        return replace(
            self, earliest_start=earliest, deadline=deadline, duration_s=duration_s, energy_pct=energy_pct,
            memory_mb=memory_mb, args=args,
        )  # fmt: skip


def _aware(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(name, "expected a date-time with a timezone")
    return value.astimezone(UTC)


def _checked_args(kind: str, args: object) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise ValidationError("args", f"expected an object, got {type(args).__name__}")
    allowed = {
        "imaging": {"target_lat_deg", "target_lon_deg", "min_el_deg", "sunlit"},
        "downlink": set(),
        "maintenance": {"mode"},
        "command": {"command", "mode"},
    }[kind]
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"not an argument of a {kind} task; known: {', '.join(sorted(allowed)) or 'none'}")
    out: dict[str, Any] = {}
    if kind == "imaging":
        for name, low, high in (("target_lat_deg", -90.0, 90.0), ("target_lon_deg", -180.0, 180.0)):
            if name not in args:
                raise ValidationError(f"args.{name}", "required for an imaging task")
            out[name] = check_number(args[name], f"args.{name}", low, high)
        out["min_el_deg"] = check_number(args.get("min_el_deg", 10.0), "args.min_el_deg", 0.0, 90.0, high_open=True)
        sunlit = args.get("sunlit", False)
        if not isinstance(sunlit, bool):
            raise ValidationError("args.sunlit", "expected true or false")
        out["sunlit"] = sunlit
    elif kind == "maintenance":
        mode = args.get("mode", "maintenance")
        if mode not in set(Mode):
            raise ValidationError("args.mode", f"expected one of {', '.join(Mode)}, got {mode!r:.40}")
        out["mode"] = str(mode)
    elif kind == "command":
        command = args.get("command")
        if command not in vocabulary.COMMAND_KINDS:
            raise ValidationError("args.command", f"expected one of {', '.join(vocabulary.COMMAND_KINDS)}, got {command!r:.40}")
        out = {"command": command}
        if command == "set_mode":
            if args.get("mode") not in set(Mode):
                raise ValidationError("args.mode", f"set_mode needs a mode, one of {', '.join(Mode)}")
            out["mode"] = str(args["mode"])
        elif "mode" in args:
            raise ValidationError("args.mode", f"{command} takes no mode")
    return out


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: str
    satellite_id: str | None
    ground_station_id: str | None
    args: dict[str, Any]
    priority: int
    earliest_start: datetime | None
    deadline: datetime | None
    duration_s: float
    energy_pct: float
    memory_mb: float
    depends_on: int | None
    status: TaskState
    attempts: int
    max_retries: int
    reason: str | None
    reason_detail: str
    retry_after: datetime | None
    result: Any
    submitted_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # The current placement (None when not placed).
    planned_satellite_id: str | None
    planned_station_id: str | None
    planned_start: datetime | None
    planned_end: datetime | None
    planned_attempt: int | None
    plan_run_id: int | None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES


@dataclass(frozen=True, slots=True)
class PlanRun:
    id: int
    at: datetime
    cause: str
    detail: str
    holder: str
    horizon_start: datetime
    horizon_end: datetime
    solve_ms: float
    placed: int
    unplaced: int
    moved: int
    value: float


@dataclass(frozen=True, slots=True)
class PlacementRow:
    """A placement to store: task ``task_id`` runs on ``satellite_id`` (and station) then."""

    task_id: int
    satellite_id: str
    ground_station_id: str | None
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerStep:
    """A step's command as the ledger has it (by its idempotency key)."""

    id: str
    status: str
    result: Any


class Tasks:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- the operator's side -------------------------------------------------------------------

    async def create(self, spec: TaskSpec, *, actor: str, now: datetime | None = None) -> Task:
        """Check and insert a task (``pending``); ValidationError/NotFound name the field, and
        nothing is written then."""
        check_actor(actor)
        spec = spec.checked(now or datetime.now(UTC))
        async with self._db.transaction() as conn:
            if spec.satellite_id is not None:
                row = await (
                    await conn.execute("SELECT 1 FROM satellites WHERE id = %s AND deleted_at IS NULL", (spec.satellite_id,))
                ).fetchone()
                if row is None:
                    raise NotFound("satellite_id", f"no satellite {spec.satellite_id!r}")
            if spec.ground_station_id is not None:
                row = await (await conn.execute("SELECT 1 FROM ground_stations WHERE id = %s", (spec.ground_station_id,))).fetchone()
                if row is None:
                    raise NotFound("ground_station_id", f"no ground station {spec.ground_station_id!r}")
            if spec.depends_on is not None:
                row = await (await conn.execute("SELECT kind, status FROM tasks WHERE id = %s", (spec.depends_on,))).fetchone()
                if row is None:
                    raise NotFound("depends_on", f"no task {spec.depends_on}")
                if row[1] in ("failed", "cancelled"):
                    raise ValidationError("depends_on", f"task {spec.depends_on} is {row[1]}")
            try:
                cur = await conn.execute(
                    "INSERT INTO tasks (kind, satellite_id, ground_station_id, args, priority, earliest_start, deadline,"
                    " duration_s, energy_pct, memory_mb, depends_on, max_retries, submitted_by)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (
                        spec.kind, spec.satellite_id, spec.ground_station_id, json_object(spec.args, "args"),
                        spec.priority, spec.earliest_start, spec.deadline, spec.duration_s, spec.energy_pct,
                        spec.memory_mb, spec.depends_on, spec.max_retries, actor,
                    ),
                )  # fmt: skip
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise refused(exc) from None
            row = await cur.fetchone()
            assert row is not None
            task_id = int(row[0])
            await append_audit(conn, actor, "task.create", "task", str(task_id), {"kind": spec.kind, "priority": spec.priority})
            task = await _get(conn, task_id)
        assert task is not None
        return task

    async def get(self, task_id: int) -> Task | None:
        async with self._db.connection() as conn:
            return await _get(conn, task_id)

    async def list_tasks(self, *, status: str | None = None, limit: int = 1000) -> list[Task]:
        """Tasks newest first, optionally of one state."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Task))
            await cur.execute(
                f"SELECT {_TASK_COLUMNS} FROM {_FROM} WHERE (%(status)s::text IS NULL OR t.status = %(status)s)"
                " ORDER BY t.id DESC LIMIT %(limit)s",
                {"status": status, "limit": limit},
            )
            return await cur.fetchall()

    async def open_tasks(self) -> list[Task]:
        """Every pending, scheduled or running task, oldest first (what the scheduler plans)."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Task))
            await cur.execute(f"SELECT {_TASK_COLUMNS} FROM {_FROM} WHERE t.status IN ('pending', 'scheduled', 'running') ORDER BY t.id")
            return await cur.fetchall()

    async def cancel(self, task_id: int, *, actor: str) -> tuple[Task, bool]:
        """-> cancelled (its placement removed); ``(task, False)`` when it was already final.
        A running task's stop step is sent by the scheduler (it sees ``started_at`` set)."""
        check_actor(actor)
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE tasks SET status = 'cancelled', reason = 'cancelled', reason_detail = %s, updated_at = now()"
                " WHERE id = %s AND status IN ('pending', 'scheduled', 'running') RETURNING id",
                (f"cancelled by {actor}", task_id),
            )
            changed = await cur.fetchone() is not None
            if changed:
                await conn.execute("DELETE FROM task_placements WHERE task_id = %s", (task_id,))
                await append_audit(conn, actor, "task.cancel", "task", str(task_id), {})
            task = await _get(conn, task_id)
        if task is None:
            raise NotFound("task_id", f"no task {task_id}")
        return task, changed

    async def set_station_active(self, station_id: str, active: bool, *, actor: str) -> tuple[bool, int | None]:
        """Take a ground station down (or back up): ``(changed, plan request id)``; a change
        asks the scheduler to re-plan (cause station_down / station_up)."""
        _, changed, request_id = await self.change_station(station_id, {"active": active}, actor=actor)
        return changed, request_id

    async def change_station(
        self, station_id: str, changes: dict[str, Any], *, actor: str, any_field: bool = False
    ) -> tuple[Station, bool, int | None]:
        """Change a station's ``active``, ``antennas`` or ``unavailable`` windows (with
        ``any_field``, any field but its id: an edit): ``(station, changed, plan request id)``. A
        change that matters to plans asks the scheduler to re-plan in the same transaction: cause
        station_down when the station lost capacity (taken down, fewer antennas, a new or longer
        down window, a lower downlink rate) or moved (location, height or mask: its passes
        change), else station_up. A new name alone asks for nothing."""
        check_actor(actor)
        allowed = (*_STATION_PLANNED, "name") if any_field else _STATION_AVAILABILITY
        unknown = set(changes) - set(allowed)
        if unknown:
            raise ValidationError(sorted(unknown)[0], "not a field of a station's availability")
        async with self._db.transaction() as conn:
            try:
                before, after = await update_station(conn, station_id, changes, actor=actor)
            except NotFound:
                raise NotFound("station_id", f"no ground station {station_id!r}") from None
            what = [k for k in _STATION_PLANNED if getattr(before, k) != getattr(after, k)]
            if not what:
                return after, before.name != after.name, None
            lost = (
                (before.active and not after.active)
                or after.antennas < before.antennas
                or not _covered(after.unavailable, before.unavailable)
                or after.downlink_mbps < before.downlink_mbps
                or any(k in what for k in ("lat_deg", "lon_deg", "alt_m", "min_el_deg"))
            )
            cause = "station_down" if lost else "station_up"
            detail = f"{station_id} {'down' if lost else 'up'}" + ("" if what == ["active"] else f": {', '.join(what)} changed")
            request_id = await _request(conn, cause, detail, actor)
        return after, True, request_id

    async def request_replan(self, cause: str, detail: str, *, actor: str) -> int:
        """Ask the scheduler holding the lease for a re-plan; the request's id."""
        check_actor(actor)
        async with self._db.transaction() as conn:
            return await _request(conn, cause, detail, actor)

    async def request_outcome(self, request_id: int) -> int | None:
        """The plan run that handled a request (None while it waits)."""
        async with self._db.connection() as conn:
            row = await (await conn.execute("SELECT plan_run_id FROM plan_requests WHERE id = %s", (request_id,))).fetchone()
        if row is None:
            raise NotFound("request_id", f"no plan request {request_id}")
        return None if row[0] is None else int(row[0])

    # -- the plan ------------------------------------------------------------------------------

    async def latest_run(self) -> PlanRun | None:
        runs = await self.runs(limit=1)
        return runs[0] if runs else None

    async def runs(self, *, limit: int = 20) -> list[PlanRun]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(PlanRun))
            await cur.execute(f"SELECT {_RUN_COLUMNS} FROM plan_runs ORDER BY id DESC LIMIT %s", (limit,))
            return await cur.fetchall()

    async def get_run(self, run_id: int) -> PlanRun | None:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(PlanRun))
            await cur.execute(f"SELECT {_RUN_COLUMNS} FROM plan_runs WHERE id = %s", (run_id,))
            return await cur.fetchone()

    async def run_changes(self, run_id: int) -> list[dict[str, Any]]:
        """What a plan run changed (``task_id``, ``change``, ``detail``), from its audit entry."""
        async with self._db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT details FROM audit_log WHERE entity = 'plan_run' AND entity_id = %s AND action = 'plan.apply'"
                    " ORDER BY id DESC LIMIT 1",
                    (str(run_id),),
                )
            ).fetchone()
        found = row[0].get("changes", []) if row and isinstance(row[0], dict) else []
        return [c for c in found if isinstance(c, dict)]

    async def open_requests(self) -> list[tuple[int, str, str]]:
        """Re-plan requests not handled yet: ``(id, cause, detail)``, oldest first."""
        async with self._db.connection() as conn:
            rows = await (
                await conn.execute("SELECT id, cause, detail FROM plan_requests WHERE handled_at IS NULL ORDER BY id")
            ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def apply_plan(
        self,
        *,
        cause: str,
        detail: str,
        holder: str,
        horizon: tuple[datetime, datetime],
        solve_ms: float,
        value: float,
        placements: list[PlacementRow],
        unplaced: dict[int, tuple[str, str]],
        handled_requests: list[int],
        changes: list[dict[str, Any]] | None = None,
    ) -> PlanRun:
        """Store a plan run and make it the current plan, in one transaction: each placed task
        (still pending or scheduled) gets its placement and ``scheduled``; each unplaced one
        loses its placement and goes back to ``pending`` with its reason. Running and final
        tasks are not touched (a cancel racing with us wins)."""
        if cause not in vocabulary.PLAN_CAUSES:
            raise ValidationError("cause", f"{cause!r:.40} is not one of {', '.join(vocabulary.PLAN_CAUSES)}")
        for reason, _ in unplaced.values():
            if reason not in vocabulary.TASK_REASONS:
                raise ValidationError("reason", f"{reason!r:.40} is not one of {', '.join(vocabulary.TASK_REASONS)}")
        async with self._db.transaction() as conn:
            before = {
                int(r[0]): (r[1], r[2], r[3])
                for r in await (await conn.execute("SELECT task_id, satellite_id, ground_station_id, start_at FROM task_placements")).fetchall()
            }
            cur = conn.cursor(row_factory=class_row(PlanRun))
            await cur.execute(
                "INSERT INTO plan_runs (cause, detail, holder, horizon_start, horizon_end, solve_ms, placed, unplaced, value)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_RUN_COLUMNS}",
                (cause, detail[:1000], holder[:255], horizon[0], horizon[1], max(0.0, solve_ms), len(placements), len(unplaced), value),
            )
            run = await cur.fetchone()
            assert run is not None
            moved = 0
            for p in placements:
                updated = await conn.execute(
                    "UPDATE tasks SET status = 'scheduled', reason = NULL, reason_detail = '', updated_at = now()"
                    " WHERE id = %s AND status IN ('pending', 'scheduled') RETURNING attempts",
                    (p.task_id,),
                )
                row = await updated.fetchone()
                if row is None:
                    continue
                old = before.get(p.task_id)
                if old is not None and old != (p.satellite_id, p.ground_station_id, p.start_at):
                    moved += 1
                await conn.execute(
                    "INSERT INTO task_placements (task_id, plan_run_id, attempt, satellite_id, ground_station_id, start_at, end_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (task_id) DO UPDATE SET plan_run_id = EXCLUDED.plan_run_id,"
                    " attempt = EXCLUDED.attempt, satellite_id = EXCLUDED.satellite_id,"
                    " ground_station_id = EXCLUDED.ground_station_id, start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at",
                    (p.task_id, run.id, int(row[0]) + 1, p.satellite_id, p.ground_station_id, p.start_at, p.end_at),
                )
            for task_id, (reason, why) in unplaced.items():
                gone = await conn.execute(
                    "UPDATE tasks SET status = 'pending', reason = %s, reason_detail = %s, updated_at = now()"
                    " WHERE id = %s AND status IN ('pending', 'scheduled') RETURNING id",
                    (reason, why[:1000], task_id),
                )
                if await gone.fetchone() is not None:
                    deleted = await conn.execute("DELETE FROM task_placements WHERE task_id = %s", (task_id,))
                    moved += deleted.rowcount
            await conn.execute("UPDATE plan_runs SET moved = %s WHERE id = %s", (moved, run.id))
            # What changed for which task and why, kept with the run (the audit log: append-only).
            details = {"cause": cause, "detail": detail[:1000], "changes": (changes or [])[:MAX_CHANGES]}
            await append_audit(conn, "scheduler", "plan.apply", "plan_run", str(run.id), details)
            if handled_requests:
                await conn.execute(
                    "UPDATE plan_requests SET handled_at = now(), plan_run_id = %s WHERE id = ANY(%s) AND handled_at IS NULL",
                    (run.id, handled_requests),
                )
        return replace(run, moved=moved)

    # -- execution -----------------------------------------------------------------------------

    async def mark_running(self, task_id: int, attempt: int) -> bool:
        """scheduled -> running for this placement's attempt (its start step is in the ledger)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "UPDATE tasks SET status = 'running', attempts = %s, started_at = now(), updated_at = now()"
                " WHERE id = %s AND status = 'scheduled' AND attempts = %s - 1",
                (attempt, task_id, attempt),
            )
            return cur.rowcount == 1

    async def mark_done(self, task_id: int, result: dict[str, Any]) -> bool:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE tasks SET status = 'done', result = %s, finished_at = now(), updated_at = now()"
                " WHERE id = %s AND status = 'running'",
                (json_object(result, "result"), task_id),
            )
            if cur.rowcount == 1:
                await conn.execute("DELETE FROM task_placements WHERE task_id = %s", (task_id,))
            return cur.rowcount == 1

    async def mark_attempt_failed(self, task_id: int, why: str, *, backoff_s: float, from_states: tuple[str, ...] = ("running",)) -> TaskState | None:
        """A failed attempt: back to ``pending`` (not placed before now + ``backoff_s``) while
        attempts remain and the deadline is ahead, else ``failed``; None if the task was not in
        ``from_states`` (someone else moved it)."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE tasks SET status = CASE WHEN attempts <= max_retries AND deadline > now() + make_interval(secs => %s)"
                " THEN 'pending' ELSE 'failed' END, reason = 'execution_failed', reason_detail = %s,"
                " retry_after = now() + make_interval(secs => %s), updated_at = now(),"
                " finished_at = CASE WHEN attempts <= max_retries AND deadline > now() + make_interval(secs => %s) THEN NULL ELSE now() END"
                " WHERE id = %s AND status = ANY(%s) RETURNING status",
                (backoff_s, why[:1000], backoff_s, backoff_s, task_id, list(from_states)),
            )
            row = await cur.fetchone()
            if row is not None:
                await conn.execute("DELETE FROM task_placements WHERE task_id = %s", (task_id,))
        return None if row is None else row[0]

    async def mark_missed(self, task_id: int) -> bool:
        """A placement whose start passed unexecuted (no scheduler held the lease then): back to
        ``pending`` without counting an attempt."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE tasks SET status = 'pending', reason = 'window', reason_detail = 'its planned window passed unexecuted',"
                " updated_at = now() WHERE id = %s AND status = 'scheduled'",
                (task_id,),
            )
            if cur.rowcount == 1:
                await conn.execute("DELETE FROM task_placements WHERE task_id = %s", (task_id,))
            return cur.rowcount == 1

    async def fail_expired(self) -> list[Task]:
        """Pending tasks whose deadline passed -> ``failed`` (reason deadline); the tasks moved."""
        async with self._db.transaction() as conn:
            rows = await (
                await conn.execute(
                    "UPDATE tasks SET status = 'failed', reason = 'deadline', finished_at = now(), updated_at = now(),"
                    " reason_detail = CASE WHEN reason_detail = '' THEN 'the deadline passed before it could run'"
                    " ELSE 'the deadline passed; last: ' || left(reason_detail, 900) END"
                    " WHERE status = 'pending' AND deadline <= now() RETURNING id"
                )
            ).fetchall()
            tasks = [t for r in rows if (t := await _get(conn, int(r[0]))) is not None]
        return tasks

    async def cancelled_unstopped(self) -> list[Task]:
        """Cancelled tasks that had started and not finished: their stop step is owed."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Task))
            await cur.execute(
                f"SELECT {_TASK_COLUMNS} FROM {_FROM} WHERE t.status = 'cancelled' AND t.started_at IS NOT NULL"
                " AND t.finished_at IS NULL ORDER BY t.id"
            )
            return await cur.fetchall()

    async def mark_stopped(self, task_id: int) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE tasks SET finished_at = now(), updated_at = now() WHERE id = %s AND finished_at IS NULL", (task_id,)
            )

    async def ledger_step(self, satellite_id: str, key: str) -> LedgerStep | None:
        """The ledger's command for a step (by its idempotency key), or None."""
        async with self._db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT id::text, status, result FROM commands WHERE satellite_id = %s AND idempotency_key = %s",
                    (satellite_id, key),
                )
            ).fetchone()
        return None if row is None else LedgerStep(row[0], row[1], row[2])

    async def ledger_steps(self, task_id: int) -> list[dict[str, Any]]:
        """Every ledger command of a task's steps (keys ``task-ID-...``), oldest first."""
        async with self._db.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id::text, satellite_id, kind, idempotency_key, status, attempts, created_at, finished_at"
                    " FROM commands WHERE idempotency_key LIKE %s ORDER BY created_at, id",
                    (f"task-{task_id}-a%",),
                )
            ).fetchall()
        names = ("id", "satellite_id", "kind", "idempotency_key", "status", "attempts", "created_at", "finished_at")
        return [dict(zip(names, r, strict=True)) for r in rows]

    # -- observation ---------------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """Tasks per state (every state present, 0 when none)."""
        async with self._db.connection() as conn:
            rows = await (await conn.execute("SELECT status, count(*) FROM tasks GROUP BY status")).fetchall()
        found = {str(r[0]): int(r[1]) for r in rows}
        return {state: found.get(state, 0) for state in vocabulary.TASK_STATES}

    async def run_stats(self) -> tuple[dict[str, int], float | None]:
        """Re-plans per cause (every cause present), and the newest run's solve time in ms."""
        async with self._db.connection() as conn:
            rows = await (await conn.execute("SELECT cause, count(*) FROM plan_runs GROUP BY cause")).fetchall()
            last = await (await conn.execute("SELECT solve_ms FROM plan_runs ORDER BY id DESC LIMIT 1")).fetchone()
        found = {str(r[0]): int(r[1]) for r in rows}
        return {c: found.get(c, 0) for c in vocabulary.PLAN_CAUSES}, (None if last is None else float(last[0]))

    async def has_work(self) -> bool:
        """Whether the scheduler has anything to do: open tasks, a cancelled task still to stop,
        or a re-plan asked for."""
        async with self._db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE status IN ('pending', 'scheduled', 'running')"
                    " OR (status = 'cancelled' AND started_at IS NOT NULL AND finished_at IS NULL))"
                    " OR EXISTS (SELECT 1 FROM plan_requests WHERE handled_at IS NULL)"
                )
            ).fetchone()
        return bool(row and row[0])

    async def fingerprint(self) -> tuple[Any, ...]:
        """What, when it changes, calls for a re-plan: ``((waiting, newest id, cancelled), active
        stations)``: tasks pending or scheduled, the newest task's id (a new task), how many were
        cancelled, and which stations are active. Tasks the scheduler itself starts or finishes
        change only ``waiting``."""
        async with self._db.connection() as conn:
            tasks = await (
                await conn.execute(
                    "SELECT count(*) FILTER (WHERE status IN ('pending', 'scheduled')), coalesce(max(id), 0),"
                    " count(*) FILTER (WHERE status = 'cancelled') FROM tasks"
                )
            ).fetchone()
            stations = await (await conn.execute("SELECT coalesce(string_agg(id, ',' ORDER BY id), '') FROM ground_stations WHERE active")).fetchone()
        return (tuple(tasks or (0, 0, 0)), stations[0] if stations else "")


_STATION_AVAILABILITY: Final = ("active", "antennas", "unavailable")
# What plans depend on: a change of one asks for a re-plan.
_STATION_PLANNED: Final = (*_STATION_AVAILABILITY, "lat_deg", "lon_deg", "alt_m", "min_el_deg", "downlink_mbps")


def _covered(windows: tuple[tuple[datetime, datetime], ...], by: tuple[tuple[datetime, datetime], ...]) -> bool:
    """Whether every window lies within one of ``by`` (no new downtime)."""
    return all(any(a >= c and b <= d for c, d in by) for a, b in windows)


async def _request(conn: Connection, cause: str, detail: str, actor: str) -> int:
    if cause not in vocabulary.PLAN_CAUSES:
        raise ValidationError("cause", f"{cause!r:.40} is not one of {', '.join(vocabulary.PLAN_CAUSES)}")
    if not isinstance(detail, str) or len(detail) > 1000:
        raise ValidationError("detail", "expected a string of at most 1000 characters")
    cur = await conn.execute(
        "INSERT INTO plan_requests (cause, detail, requested_by) VALUES (%s, %s, %s) RETURNING id", (cause, detail, actor)
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _get(conn: Connection, task_id: int) -> Task | None:
    cur = conn.cursor(row_factory=class_row(Task))
    await cur.execute(f"SELECT {_TASK_COLUMNS} FROM {_FROM} WHERE t.id = %s", (task_id,))
    return await cur.fetchone()
