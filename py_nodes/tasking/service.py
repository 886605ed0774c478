"""The scheduler service: plans, re-plans and executes, while it holds the scheduler lease.

Every ``scheduler`` node of the cluster runs one; only the one holding PostgreSQL advisory lock
``SCHEDULER_KEY`` (on a connection of its own: PostgreSQL frees it when that session ends,
however the process ends) acts. The others wait and try again each tick; when the holder dies
(kill -9 included) the next one takes over from the database: tasks, placements and the steps
already in the ledger are all there.

Each tick (``TICK_S``), the holder:

1. fails the pending tasks whose deadline passed (an alarm each, through the alarms table and the
   event bus);
2. executes: a scheduled task whose start came goes ``running`` and its start step becomes a
   ledger command (through ``stellar:command/4``, idempotency key ``task-ID-aN-start``); at its
   end the stop step goes the same way and the start step's outcome decides: done, or a failed
   attempt (retried with backoff on the next viable window, or failed with an alarm). Submitting
   a step again returns the ledger's first command: a scheduler that takes over re-submits the
   steps it cannot prove were sent, and none runs twice;
3. re-plans when something changed, with the cause recorded: a task added or cancelled, a
   station down or up, a satellite unavailable (safe mode, actor lost), an execution failed, a
   re-plan asked for (HTTP, shell), the freeze horizon passed with tasks still unplaced, or a
   takeover. Placements of running tasks and inside the freeze window are kept (the engine's
   ``previous``).

Events: ``task`` (a task's new state) and ``plan`` (a new plan run) on BEAM's bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

import scheduler
from py_nodes.db import Alarms, Database, DatabaseUnavailable, DbError, Stations
from py_nodes.db.lease import AdvisoryLock
from py_nodes.db.tasks import PlacementRow, Task, Tasks, step_key
from py_nodes.erldist import Atom, Node, NodeDownError, RpcError
from py_nodes.settings import SchedulerSettings

from .problem import LiveSat, ProblemBuilder, previous_plan

__all__ = ["SCHEDULER_KEY", "SchedulerService", "live_sats", "plan_once"]

log = logging.getLogger("stellarops.scheduler")

SCHEDULER_KEY: Final = 0x5354_454C_5343_4844  # "STELSCHD"
TICK_S: Final = 1.0
RESULT_GRACE_S: Final = 30.0  # after a task's end, how long its start step may still be unanswered
FREEZE_REPLAN_MIN_S: Final = 30.0
ACTOR: Final = "scheduler"
OK: Final = Atom("ok")
# The ledger commands of each kind's steps: (kind, args) to start it, then the ones to stop it.
Step = tuple[str, dict[str, Any]]


def steps_of(task: Task) -> tuple[Step, list[Step]]:
    """A task's start step and its stop steps (back to nominal)."""
    nominal: Step = ("set_mode", {"mode": "nominal"})
    if task.kind == "imaging":
        return ("collect", {}), [nominal]
    if task.kind == "downlink":
        return ("downlink", {}), [nominal]
    if task.kind == "maintenance":
        mode = str(task.args.get("mode", "maintenance"))
        # maintenance and safe can only go back through standby.
        back = [("set_mode", {"mode": "standby"}), nominal] if mode in ("maintenance", "safe") else [nominal]
        return ("set_mode", {"mode": mode}), back
    command = str(task.args["command"])
    return (command, {"mode": task.args["mode"]} if command == "set_mode" else {}), []


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    plan: scheduler.Plan
    problem: scheduler.Problem


async def live_sats(node: Node, beam_node: str) -> list[LiveSat] | None:
    """The satellites as ``stellar:sats()`` reports them; None when BEAM does not answer."""
    try:
        terms = await node.rpc(beam_node, "stellar", "sats", [], timeout=5)
    except (RpcError, NodeDownError, OSError, TimeoutError):
        return None
    return [s for s in (_live_sat(t) for t in terms) if s is not None]


def _live_sat(term: Any) -> LiveSat | None:
    try:
        tle = term.get(Atom("tle"))
        pair = (tle[0].decode(), tle[1].decode()) if isinstance(tle, tuple) and len(tle) == 2 else None
        return LiveSat(
            term[Atom("id")].decode(), str(term[Atom("mode")]), float(term[Atom("energy_pct")]),
            float(term[Atom("memory_used_mb")]), float(term[Atom("memory_capacity_mb")]), pair,
            term.get(Atom("status")) == "running",
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError):
        return None


async def plan_once(
    builder: ProblemBuilder,
    tasks: list[Task],
    sats: list[LiveSat],
    stations: list[Any],
    *,
    budget_s: float,
    cause: str,
    now: datetime | None = None,
    last: scheduler.Plan | None = None,
) -> PlanOutcome:
    """One solve in a worker thread (numpy and the engine hold the CPU): the problem from live
    state, the stored placements as ``previous`` (with ``last``, the engine's previous plan, for
    their antennas): an incremental re-plan, moving only what the change reaches."""
    when = now or datetime.now(UTC)

    def solve() -> PlanOutcome:
        problem = builder.build(when, tasks, sats, stations)
        previous = previous_plan(when, builder.horizon_s, tasks, last)
        return PlanOutcome(scheduler.plan(problem, budget_s=budget_s, previous=previous, cause=cause), problem)

    return await asyncio.to_thread(solve)


class SchedulerService:
    def __init__(self, node: Node, conninfo: str, beam_node: str, settings: SchedulerSettings, holder: str) -> None:
        self.node, self.beam_node, self.settings, self.holder = node, beam_node, settings, holder
        self.db = Database(conninfo, max_size=4, timeout_s=2.0, name="scheduler")
        self.tasks = Tasks(self.db)
        self.stations = Stations(self.db)
        self.alarms = Alarms(self.db)
        self.lease = AdvisoryLock(conninfo, SCHEDULER_KEY, what="scheduler")
        self.builder = ProblemBuilder(horizon_s=settings.horizon_s, freeze_s=settings.freeze_s, setup_gap_s=settings.setup_gap_s)
        self._task: asyncio.Task[None] | None = None
        self._leading = False
        self._fingerprint: tuple[Any, ...] | None = None
        self._unavailable: frozenset[str] | None = None
        self._last_plan_at = -1e9
        self._failed_this_tick: list[str] = []
        self._owner_known: bool | None = None
        self._plan: scheduler.Plan | None = None  # the engine's last plan while we lead (None after a takeover)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="scheduler")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.lease.close()
        await self.db.close()

    @property
    def leading(self) -> bool:
        return self._leading

    async def _run(self) -> None:
        delay_s = 0.2
        while True:
            try:
                await self.db.connect()
                break
            except DatabaseUnavailable as exc:
                log.warning("scheduler: %s; retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
        while True:
            started = time.monotonic()
            try:
                if await self.lease.check():
                    if not self._leading:
                        log.info("scheduler: %s holds the scheduler lease: planning and executing", self.holder)
                        self._leading, self._fingerprint, self._plan = True, None, None
                    await self.tick()
                elif self._leading:
                    log.warning("scheduler: %s lost the scheduler lease: standing by", self.holder)
                    self._leading = False
            except (DbError, psycopg.Error) as exc:
                log.warning("scheduler: tick skipped: %s", exc)
            except Exception:  # a bug: log it, keep scheduling
                log.exception("scheduler: tick failed")
            await asyncio.sleep(max(0.05, TICK_S - (time.monotonic() - started)))

    # -- one tick ------------------------------------------------------------------------------

    async def tick(self) -> None:
        if self._fingerprint is not None and not await self.tasks.has_work():
            self._fingerprint = await self.tasks.fingerprint()  # idle: nothing to plan or run
            return
        if not await self._cluster_owns_database():
            return  # another cluster owns the database: its scheduler plans; ours would only fail steps
        sats = await live_sats(self.node, self.beam_node)
        if sats is None:
            return  # no control node: nothing can be executed or known about satellites
        self._failed_this_tick = []
        for task in await self.tasks.fail_expired():
            await self._task_failed(task, "the deadline passed before it could run")
        open_tasks = await self.tasks.open_tasks()
        await self._execute(open_tasks, sats)
        await self._stop_cancelled()
        cause, detail, requests = await self._trigger(sats)
        if cause is not None:
            await self.replan(cause, detail, requests, sats)

    async def _cluster_owns_database(self) -> bool:
        """Whether our BEAM node's store owns the database (``stellar:store_status()``): a cluster
        that does not cannot put steps in the ledger."""
        try:
            status = await self.node.rpc(self.beam_node, "stellar", "store_status", [], timeout=5)
        except (RpcError, NodeDownError, OSError, TimeoutError):
            return False
        owner = status.get(Atom("owner")) if isinstance(status, dict) else None
        if owner is False and self._owner_known is not False:
            log.warning("scheduler: this cluster does not own the database: not planning or executing")
        self._owner_known = owner
        return owner is not False

    async def _trigger(self, sats: list[LiveSat]) -> tuple[str | None, str, list[int]]:
        requests = await self.tasks.open_requests()
        fingerprint = await self.tasks.fingerprint()
        unavailable = frozenset(s.sat_id for s in sats if not s.available)
        previous, self._fingerprint = self._fingerprint, fingerprint
        was_unavailable, self._unavailable = self._unavailable, unavailable
        ids = [r[0] for r in requests]
        if previous is None:
            return "takeover", f"{self.holder} took the scheduler lease", ids
        if requests:
            return requests[0][1], requests[0][2], ids
        if self._failed_this_tick:
            return "execution_failed", "; ".join(self._failed_this_tick)[:1000], ids
        (count, max_id, cancelled), stations = fingerprint
        (_, old_max, old_cancelled), old_stations = previous
        if stations != old_stations:
            up = set(filter(None, stations.split(","))) - set(filter(None, old_stations.split(",")))
            down = set(filter(None, old_stations.split(","))) - set(filter(None, stations.split(",")))
            if down:
                return "station_down", f"down: {', '.join(sorted(down))}", ids
            return "station_up", f"up: {', '.join(sorted(up))}", ids
        if max_id > old_max:
            return "task_added", f"{count} task(s) waiting", ids
        if cancelled > old_cancelled:
            return "task_cancelled", f"{cancelled - old_cancelled} cancelled, {count} task(s) waiting", ids
        if was_unavailable is not None and unavailable - was_unavailable:
            return "satellite_unavailable", f"unavailable: {', '.join(sorted(unavailable - was_unavailable))}"[:1000], ids
        waiting = count > 0
        if waiting and time.monotonic() - self._last_plan_at >= max(FREEZE_REPLAN_MIN_S, self.settings.freeze_s):
            return "freeze_passed", "the freeze window passed with tasks waiting", ids
        return None, "", ids

    async def replan(self, cause: str, detail: str, requests: list[int], sats: list[LiveSat] | None = None) -> int:
        """Plan now and store it as the current plan; the plan run's id."""
        sats = sats if sats is not None else (await live_sats(self.node, self.beam_node) or [])
        open_tasks = await self.tasks.open_tasks()
        stations = await self.stations.list_all()
        now = datetime.now(UTC)
        outcome = await plan_once(
            self.builder, open_tasks, sats, stations, budget_s=self.settings.budget_s, cause=cause, now=now, last=self._plan
        )
        plan = outcome.plan
        by_id = {t.id: t for t in open_tasks}
        placements = [
            PlacementRow(int(p.task_id), p.sat_id, p.station_id, p.start_utc, p.end_utc)
            for p in plan.placements
            if int(p.task_id) in by_id and by_id[int(p.task_id)].status in ("pending", "scheduled")
        ]
        unplaced: dict[int, tuple[str, str]] = {int(u.task_id): (str(u.reason), u.detail) for u in plan.unplaced if int(u.task_id) in by_id}
        run = await self.tasks.apply_plan(
            cause=cause, detail=detail, holder=self.holder, horizon=(now, now + timedelta(seconds=self.settings.horizon_s)),
            solve_ms=plan.solve_ms, value=float(plan.value), placements=placements, unplaced=unplaced,
            handled_requests=requests,
            changes=[{"task_id": int(c.task_id), "change": c.change, "detail": c.detail} for c in plan.changes if c.task_id.isdigit()],
        )  # fmt: skip
        self._plan = plan
        self._last_plan_at = time.monotonic()
        self._fingerprint = await self.tasks.fingerprint()  # our own changes are not a trigger
        log.info(
            "scheduler: plan %d (%s): %d placed, %d unplaced, %d moved, %.1f ms",
            run.id, cause, run.placed, run.unplaced, run.moved, run.solve_ms,
        )  # fmt: skip
        await self._publish("plan", None, {
            "run_id": run.id, "cause": cause, "detail": detail, "placed": run.placed, "unplaced": run.unplaced,
            "moved": run.moved, "solve_ms": run.solve_ms,
        })  # fmt: skip
        for task_id in [p.task_id for p in placements] + list(unplaced):
            before = by_id[task_id]
            after = await self.tasks.get(task_id)
            if after is not None and (after.status, after.planned_start, after.reason) != (before.status, before.planned_start, before.reason):
                await self._publish_task(after)
        return run.id

    # -- execution -----------------------------------------------------------------------------

    async def _execute(self, open_tasks: list[Task], sats: list[LiveSat]) -> None:
        now = datetime.now(UTC)
        for task in open_tasks:
            if task.planned_start is None or task.planned_end is None or task.planned_satellite_id is None:
                continue
            if task.status == "scheduled" and task.planned_start <= now:
                if task.planned_end <= now:
                    if await self.tasks.mark_missed(task.id):
                        await self._publish_task(await self.tasks.get(task.id))
                elif task.planned_attempt is not None and await self.tasks.mark_running(task.id, task.planned_attempt):
                    running = await self.tasks.get(task.id)
                    if running is not None:
                        await self._publish_task(running)
                        await self._start(running)
            elif task.status == "running":
                await self._follow(task, now)

    async def _start(self, task: Task) -> None:
        (kind, args), _ = steps_of(task)
        assert task.planned_satellite_id is not None
        error = await self._submit(task.planned_satellite_id, kind, args, step_key(task.id, task.attempts, "start"))
        if error is not None:
            await self._attempt_failed(task, f"start step refused: {error}")

    async def _follow(self, task: Task, now: datetime) -> None:
        """A running task: make sure its start step is in the ledger, and at its end decide."""
        sat = task.planned_satellite_id
        assert sat is not None and task.planned_end is not None
        key = step_key(task.id, task.attempts, "start")
        start = await self.tasks.ledger_step(sat, key)
        if start is None:  # we (or the scheduler before us) died between running and the submit
            if now < task.planned_end:
                await self._start(task)
            else:
                await self._attempt_failed(task, "its start step never reached the ledger")
            return
        if start.status == "failed":
            await self._attempt_failed(task, f"start step failed: {_short(start.result)}")
            return
        single = not steps_of(task)[1]
        if start.status == "done" and (single or now >= task.planned_end):
            stops = await self._stop(task)
            await self.tasks.mark_done(task.id, {"start": start.id, "stop": stops})
            await self._publish_task(await self.tasks.get(task.id))
        elif start.status != "done" and now >= task.planned_end + timedelta(seconds=RESULT_GRACE_S):
            await self._attempt_failed(task, f"start step still {start.status} {RESULT_GRACE_S:.0f} s after the task's end")

    async def _stop(self, task: Task) -> list[str]:
        sat = task.planned_satellite_id or task.satellite_id
        assert sat is not None
        ids = []
        for i, (kind, args) in enumerate(steps_of(task)[1]):
            key = step_key(task.id, task.attempts, "stop" if i == 0 else f"stop{i + 1}")
            error = await self._submit(sat, kind, args, key)
            if error is not None:
                log.warning("scheduler: task %d: stop step %s refused: %s", task.id, key, error)
            step = await self.tasks.ledger_step(sat, key)
            if step is not None:
                ids.append(step.id)
        return ids

    async def _stop_cancelled(self) -> None:
        for task in await self.tasks.cancelled_unstopped():
            if task.planned_satellite_id or task.satellite_id:
                await self._stop(task)
            await self.tasks.mark_stopped(task.id)

    async def _attempt_failed(self, task: Task, why: str) -> None:
        backoff_s = self.settings.backoff_s * 2 ** max(0, task.attempts - 1)
        state = await self.tasks.mark_attempt_failed(task.id, why, backoff_s=backoff_s)
        if state is None:
            return
        # What it ran is stopped (a collect left on would fill the memory).
        if task.status == "running":
            await self._stop(task)
        self._failed_this_tick.append(f"task {task.id}: {why}")
        log.warning("scheduler: task %d attempt %d failed (%s): now %s", task.id, task.attempts, why, state)
        after = await self.tasks.get(task.id)
        if state == "failed" and after is not None:
            await self._task_failed(after, why)
        else:
            await self._publish_task(after)

    async def _task_failed(self, task: Task, why: str) -> None:
        """A task that will not run: an alarm (on its satellite, when it has one) and an event."""
        await self._publish_task(task)
        sat = task.planned_satellite_id or task.satellite_id
        if sat is None:
            return
        message = f"task {task.id} ({task.kind}) failed: {why}"[:1000]
        try:
            alarm, raised = await self.alarms.raise_alarm(sat, "task_failed", "warning", message)
        except DbError as exc:
            log.warning("scheduler: alarm for task %d not raised: %s", task.id, exc)
            return
        if raised:
            await self._publish("alarm", sat, {"id": alarm.id, "alarm": "task_failed", "severity": "warning", "message": message})

    async def _submit(self, sat_id: str, kind: str, args: dict[str, Any], key: str) -> str | None:
        """A step into the ledger (and to its satellite) through the facade; None when accepted,
        else why not. The same key again returns the first command: never a second one."""
        term_args = {Atom(k): Atom(v) if k == "mode" else v for k, v in args.items()}
        try:
            reply = await self.node.rpc(
                self.beam_node, "stellar", "command",
                [sat_id.encode(), Atom(kind), term_args, {Atom("idempotency_key"): key.encode()}], timeout=10,
            )  # fmt: skip
        except (RpcError, NodeDownError, OSError, TimeoutError) as exc:
            return f"control node: {exc}"
        if isinstance(reply, tuple) and reply and reply[0] == OK:
            return None
        return _short(reply)

    # -- events --------------------------------------------------------------------------------

    async def _publish_task(self, task: Task | None) -> None:
        if task is None:
            return
        data = {
            "id": task.id, "kind": task.kind, "status": task.status, "reason": task.reason, "attempts": task.attempts,
            "planned_start_ms": _ms(task.planned_start), "planned_end_ms": _ms(task.planned_end),
            "station_id": task.planned_station_id,
        }  # fmt: skip
        await self._publish("task", task.planned_satellite_id or task.satellite_id, data)

    async def _publish(self, event_type: str, sat_id: str | None, data: dict[str, Any]) -> None:
        term = {Atom(k): v.encode() if isinstance(v, str) else v for k, v in data.items()}
        with contextlib.suppress(RpcError, NodeDownError, OSError, TimeoutError):
            await self.node.rpc(self.beam_node, "stellar", "publish", [Atom(event_type), None if sat_id is None else sat_id.encode(), term], timeout=5)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _short(value: Any) -> str:
    return repr(value)[:300]


Closer = Callable[[], Awaitable[None]]
