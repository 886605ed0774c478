"""The ``scheduler`` role: the mission scheduler's node (``py_nodes.tasking.service``).

BEAM starts and supervises it like every Python node; every scheduler node runs the service,
and the one holding the scheduler lease acts (see the service). Each also registers
``scheduler``, a GenServer for the shell (``stellar:tasks/0`` and friends call it; any scheduler
node answers, from the database)::

    call tasks                  -> {ok, [Task]}           newest first, at most 1000
    call {task, Id}             -> {ok, Task} | {error, not_found}
    call {submit_task, Spec}    -> {ok, Id} | {error, {bad_field, Field}} | {error, {not_found, Field}}
    call {cancel_task, Id}      -> ok | {error, not_found} | {error, {already, State}}
    call plan                   -> {ok, #{run => Run | undefined, tasks => [Task]}}   (open tasks)
    call replan                 -> {ok, RequestId}        (the lease holder re-plans at its next tick)

``Task`` is a map with atom keys (strings as binaries, times as ms since the epoch, absent values
``undefined``); ``Spec`` is a map with atom or binary keys: ``kind``, and optionally
``satellite_id``, ``ground_station_id``, ``priority``, ``earliest_start_ms``, ``deadline_ms``,
``duration_s``, ``energy_pct``, ``memory_mb``, ``depends_on``, ``max_retries``, ``args`` (a map).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from py_nodes.db import DatabaseUnavailable, NotFound, ValidationError
from py_nodes.db.tasks import Task, Tasks, TaskSpec
from py_nodes.erldist import Atom, Caller, GenServer, Node
from py_nodes.settings import Settings
from py_nodes.tasking.service import SchedulerService

__all__ = ["SchedulerServer", "start", "task_term"]

log = logging.getLogger("stellarops.scheduler")

OK: Final = Atom("ok")
ERROR: Final = Atom("error")
SPEC_FIELDS: Final = frozenset({
    "kind", "satellite_id", "ground_station_id", "priority", "earliest_start_ms", "deadline_ms", "duration_s",
    "energy_pct", "memory_mb", "depends_on", "max_retries", "args",
})  # fmt: skip


class SchedulerServer(GenServer):
    def __init__(self, service: SchedulerService) -> None:
        self.service = service
        self.tasks: Tasks = service.tasks

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        try:
            return await self._call(request)
        except DatabaseUnavailable:
            return (ERROR, Atom("store_unavailable"))
        except NotFound as exc:
            return (ERROR, (Atom("not_found"), Atom(exc.field)))
        except ValidationError as exc:
            return (ERROR, (Atom("bad_field"), exc.field.encode()))
        except Exception as exc:  # a bug: answer, log, keep serving
            log.exception("scheduler: %.200r failed", request)
            return (ERROR, (Atom("internal"), f"{type(exc).__name__}".encode()))

    async def _call(self, request: Any) -> Any:
        if request == "tasks":
            return (OK, [task_term(t) for t in await self.tasks.list_tasks(limit=1000)])
        if request == "plan":
            run = await self.tasks.latest_run()
            run_term = None if run is None else {
                Atom("id"): run.id, Atom("cause"): Atom(run.cause), Atom("at"): _ms(run.at), Atom("solve_ms"): run.solve_ms,
                Atom("placed"): run.placed, Atom("unplaced"): run.unplaced, Atom("moved"): run.moved,
            }  # fmt: skip
            open_tasks = await self.tasks.open_tasks()
            return (OK, {Atom("run"): run_term, Atom("tasks"): [task_term(t) for t in open_tasks]})
        if request == "replan":
            return (OK, await self.tasks.request_replan("manual", "asked from the shell", actor="shell"))
        if type(request) is tuple and len(request) == 2:
            tag, arg = request
            if tag == "task" and type(arg) is int:
                task = await self.tasks.get(arg)
                return (ERROR, Atom("not_found")) if task is None else (OK, task_term(task))
            if tag == "cancel_task" and type(arg) is int:
                task, changed = await self.tasks.cancel(arg, actor="shell")
                return OK if changed else (ERROR, (Atom("already"), Atom(task.status)))
            if tag == "submit_task" and type(arg) is dict:
                task = await self.tasks.create(spec_from_term(arg), actor="shell")
                return (OK, task.id)
        return (ERROR, Atom("unknown_call"))


def spec_from_term(term: dict[Any, Any]) -> TaskSpec:
    """A shell's task map as a ``TaskSpec`` (checked later by ``Tasks.create``)."""
    fields: dict[str, Any] = {}
    for key, value in term.items():
        name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        if name not in SPEC_FIELDS:
            raise ValidationError(name[:64] or "?", f"unknown field; known: {', '.join(sorted(SPEC_FIELDS))}")
        fields[name] = _plain(value)
    if "kind" not in fields:
        raise ValidationError("kind", "required")
    for name in ("earliest_start_ms", "deadline_ms"):
        if name in fields:
            value = fields.pop(name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**47:
                raise ValidationError(name, "expected ms since the epoch (an integer)")
            fields[name.removesuffix("_ms")] = datetime.fromtimestamp(value / 1000, UTC)
    args = fields.get("args", {})
    if not isinstance(args, dict):
        raise ValidationError("args", "expected a map")
    return TaskSpec(**fields)


def _plain(value: Any) -> Any:
    """Atoms and binaries as str, maps with str keys: what TaskSpec takes."""
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):  # Atom included
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {(k.decode(errors="replace") if isinstance(k, bytes) else str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def task_term(t: Task) -> dict[Atom, Any]:
    def text(value: str | None) -> bytes | None:
        return None if value is None else value.encode()

    return {
        Atom("id"): t.id, Atom("kind"): Atom(t.kind), Atom("status"): Atom(t.status), Atom("priority"): t.priority,
        Atom("satellite_id"): text(t.satellite_id), Atom("ground_station_id"): text(t.ground_station_id),
        Atom("earliest_start"): _ms(t.earliest_start), Atom("deadline"): _ms(t.deadline), Atom("duration_s"): t.duration_s,
        Atom("attempts"): t.attempts, Atom("reason"): None if t.reason is None else Atom(t.reason),
        Atom("reason_detail"): t.reason_detail.encode(),
        Atom("planned"): None if t.planned_start is None else {
            Atom("satellite_id"): text(t.planned_satellite_id), Atom("station_id"): text(t.planned_station_id),
            Atom("start"): _ms(t.planned_start), Atom("end"): _ms(t.planned_end),
        },
    }  # fmt: skip


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def start(node: Node, settings: Settings) -> Callable[[], Awaitable[None]]:
    """The role's entry point (``stellarops node --role scheduler``; needs DATABASE_URL and the
    BEAM node it belongs to); returns what to await on a clean stop."""
    conninfo = settings.database.url
    if not conninfo:
        raise ValueError("the scheduler role needs DATABASE_URL (stellarops up sets it)")
    beam = settings.node.beam_node
    if not beam:
        raise ValueError("the scheduler role needs STELLAROPS_BEAM_NODE (BEAM sets it)")
    service = SchedulerService(node, conninfo, beam, settings.scheduler, f"scheduler node {node.name}")
    node.start_server(SchedulerServer(service), name="scheduler")
    service.start()
    return service.close
