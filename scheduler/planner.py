"""The planner: a greedy construction, then large-neighbourhood search within a time budget;
re-plans keep what a change does not reach.

Construction: tasks in order of weight (a task's priority, or a dependent's if higher), then
deadline, each after the tasks it depends on; each goes where it finishes earliest among its
options (satellite, station, window), at the earliest grid time that passes every check.

Improvement: repeatedly pick an unplaced task that has options, pick one of its options, take
out the placements in its way (the satellite's and the station's, those depending on them too;
for an energy or memory failure a few more of the satellite's), place the picked task first and
then the others again (by weight, with the unplaced that share the resources), and keep the
result unless it lowers (value, number placed). Deterministic for a seed when ``max_iterations``
ends the search rather than the time budget.

Re-planning (``previous``): placements that run or start within ``freeze_s`` of now are kept as
they are (unless their task is gone, their satellite unavailable or their station down during
them). With ``incremental`` the other placements are kept too, in start order, as long as they
still fit the new problem exactly; only what no longer fits, and the tasks not placed, are
placed again, and the search then moves only those (a kept placement stays where it is).
``changes`` lists what moved, came or went, with the cause.

Speed: keep the previous ``Plan`` object and build the new ``Problem`` with the same
``station_passes`` and ``target_windows`` tuple objects when they did not change: the re-plan
then reuses their grouping (``Plan.reuse``) instead of regrouping every window.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections import Counter
from collections.abc import Iterable

from .index import EPS_S, Index, Option, RawWindows
from .model import Placement, Plan, PlanChange, Problem, Reason, Unplaced
from .state import STAGE_REASONS, Slot, State

__all__ = ["greedy_plan", "plan"]

_STAGE_DETAILS = {
    "deadline": "no time left in its windows before its deadline",
    "station_conflict": "the station's antennas are taken (or it is down) in all of its windows",
    "satellite_busy": "its satellite runs other tasks in all of its windows",
    "memory": "every time it fits would overflow the memory or free data not on board",
    "energy": "every time it fits would take the battery below its reserve",
}
_LNS_EXTRA_VICTIMS = 2  # more of the satellite's tasks taken out for an energy/memory failure
_LNS_COMPANIONS = 4  # unplaced tasks sharing the resources retried in a move


def plan(
    problem: Problem,
    *,
    budget_s: float = 1.0,
    previous: Plan | None = None,
    cause: str = "initial",
    seed: int = 0,
    incremental: bool = True,
    max_iterations: int | None = None,
) -> Plan:
    """Plan ``problem`` within about ``budget_s`` seconds (construction always completes).

    ``previous``: the plan in force; its frozen placements stay, and with ``incremental`` so do
    the others that still fit. ``cause`` names why this plan is made (recorded in ``changes``).
    """
    started = time.perf_counter()
    raw = previous.reuse if previous is not None and isinstance(previous.reuse, RawWindows) else None
    planner = _Planner(problem, seed, raw)
    if previous is not None:
        planner.keep(previous, incremental)
    planner.construct()
    greedy_value = planner.state.value
    iterations = 0
    if budget_s > 0 and max_iterations != 0:
        only = planner.pool if previous is not None and incremental else None
        iterations = planner.improve(started + budget_s, max_iterations, only)
    unplaced = planner.explain()
    placements = planner.placements()
    changes = _diff(planner, previous, placements, unplaced, cause) if previous is not None else ()
    return Plan(
        now_utc=problem.now_utc,
        horizon_s=problem.horizon_s,
        placements=placements,
        unplaced=unplaced,
        value=planner.state.value,
        solve_ms=(time.perf_counter() - started) * 1e3,
        cause=cause,
        changes=changes,
        stats={
            "greedy_value": float(greedy_value),
            "iterations": float(iterations),
            "accepted": float(planner.accepted),
            "kept": float(planner.kept_count),
            "replaced": float(len(planner.pool)),
        },
        reuse=planner.ix.raw,
    )


def greedy_plan(problem: Problem) -> Plan:
    """The construction alone (the priority-greedy baseline the search starts from)."""
    return plan(problem, budget_s=0.0)


class _Planner:
    def __init__(self, problem: Problem, seed: int, raw: RawWindows | None) -> None:
        self.ix = Index(problem, raw)
        self.state = State(self.ix)
        self.rng = random.Random(seed)
        self.failures: dict[str, tuple[Reason, str]] = {}
        self.original: dict[str, tuple[Slot, Placement]] = {}  # kept unchanged from previous
        self.dropped: dict[str, str] = {}  # previous placements not kept: why
        self.pool: set[str] = set(self.ix.tasks)  # tasks (re)placed by this run
        self.kept_count = 0
        self.accepted = 0
        self.low_energy: dict[str, str] = {}  # satellites that take nothing new: why
        self.movable: set[str] | None = None  # None: every placement that is not frozen
        self.deadline = math.inf  # of the search (a move past it is undone)
        self.changed_since_construct = True
        self.energy_marked = False

    # -- re-planning -------------------------------------------------------------------------

    def keep(self, previous: Plan, incremental: bool) -> None:
        ix, st = self.ix, self.state
        frozen_until = ix.problem.freeze_s
        candidates = []
        for p in sorted(previous.placements, key=lambda p: (p.start_utc, p.task_id)):
            task = ix.tasks.get(p.task_id)
            start, end = ix.rel(p.start_utc), ix.rel(p.end_utc)
            if task is None or end <= EPS_S:
                continue  # gone, or over: not part of this plan
            sat = ix.sats.get(p.sat_id)
            if sat is None or not sat.available:
                self.dropped[p.task_id] = f"satellite {p.sat_id} is unavailable"
                continue
            if p.station_id is not None and (
                p.station_id not in ix.stations
                or any(a < end - EPS_S and b > start + EPS_S for a, b in ix.down[p.station_id])
            ):
                self.dropped[p.task_id] = f"station {p.station_id} is down during it"
                continue
            slot = st.make_slot(task, p.sat_id, p.station_id, p.antenna, start, end - start)
            if start < frozen_until - EPS_S:
                slot = dataclasses.replace(slot, frozen=True)
                if p.station_id is not None and (p.antenna is None or p.antenna >= ix.stations[p.station_id].antennas):
                    self.dropped[p.task_id] = f"station {p.station_id} has no antenna {p.antenna}"
                    continue
                st.add(slot)
                self.original[p.task_id] = (slot, p)
            elif incremental:
                candidates.append((slot, p))
            else:
                self.dropped[p.task_id] = "re-planned in full"
        self._mark_low_energy()
        self.energy_marked = True
        # Cheap checks one by one; memory and energy once per satellite, and one by one again
        # only on a satellite where the whole no longer fits.
        kept = []
        for slot, p in candidates:
            fits = self._still_fits(slot, resources=False)
            if isinstance(fits, Slot):
                st.add(fits)
                kept.append((fits, p))
            else:
                self.dropped[p.task_id] = fits
        short = {sat for sat in {s.sat_id for s, _ in kept} if not self._sat_consistent(sat)}
        if short:
            redo = [(s, p) for s, p in kept if s.sat_id in short]
            for s, _ in redo:
                st.remove(s.task_id)
            for s, p in redo:
                fits = self._still_fits(s)
                if isinstance(fits, Slot):
                    st.add(fits)
                else:
                    self.dropped[p.task_id] = fits
            self._drop_orphans()
        for s, p in kept:
            if st.slots.get(s.task_id) is s and s.antenna == p.antenna:
                self.original[p.task_id] = (s, p)
        self.kept_count = len(st.slots)
        self.pool = {tid for tid in ix.tasks if tid not in st.slots}
        if incremental:
            self.movable = set(self.pool)

    def _drop_orphans(self) -> None:
        """Take out kept placements whose dependency went out (or now ends after them)."""
        st = self.state
        changed = True
        while changed:
            changed = False
            for tid, slot in list(st.slots.items()):
                if slot.frozen:
                    continue
                for d in self.ix.tasks[tid].depends_on:
                    dep = st.slots.get(d)
                    if dep is None or dep.end_s > slot.start_s + EPS_S:
                        st.remove(tid)
                        self.dropped[tid] = f"its dependency {d} moved or is unplaced"
                        changed = True
                        break

    def _still_fits(self, slot: Slot, *, resources: bool = True) -> Slot | str:
        """``slot`` (on a free antenna) if it fits the new problem as it is, else why not."""
        ix, st = self.ix, self.state
        task = ix.tasks[slot.task_id]
        if slot.sat_id in self.low_energy:
            return self.low_energy[slot.sat_id]
        why = ix.structural(task)
        if why is not None:
            return f"{why[0]}: {why[1]}"
        if abs(slot.end_s - slot.start_s - ix.duration_s(task, slot.station_id)) > 1e-5:
            return "its duration changed"
        if abs(ix.snap(slot.start_s - 1e-7) - slot.start_s) > 1e-5:
            return "off the time grid"
        if not ix.holds(task, slot.sat_id, slot.station_id, slot.start_s, slot.end_s):
            return "its window, earliest start or deadline no longer holds it"
        for d in task.depends_on:
            dep = st.slots.get(d)
            if dep is None or dep.end_s > slot.start_s + EPS_S:
                return f"its dependency {d} moved or is unplaced"
            if task.kind == "downlink" and ix.tasks[d].kind == "imaging" and dep.sat_id != slot.sat_id:
                return f"its dependency {d} moved to another satellite"
        if slot.station_id is not None:
            antenna = st.free_antenna(slot.station_id, slot.start_s, slot.end_s, slot.antenna)
            if antenna is None:
                return "station_conflict: the station is taken at its time"
            slot = dataclasses.replace(slot, antenna=antenna)
        stage = st.fits_exactly(slot, resources=resources)
        if stage is not None:
            return f"{STAGE_REASONS[stage]}: no longer fits at its time"
        return slot

    def _mark_low_energy(self) -> None:
        """Satellites whose forecast with nothing new already falls below the reserve get
        nothing new (they need a power-saving mode first)."""
        for sat_id, sat in self.ix.sats.items():
            low, at = self.state.energy_min(sat_id)
            if low < sat.reserve_wh - 1e-9:
                when = self.ix.utc(at).isoformat()
                self.low_energy[sat_id] = (
                    f"energy: satellite {sat_id}'s forecast falls below its reserve by itself ({when})"
                )

    # -- construction ------------------------------------------------------------------------

    def construct(self) -> None:
        if not self.energy_marked:
            self._mark_low_energy()
            self.energy_marked = True
        # Again until nothing more fits: a task that failed may fit once later ones are in
        # (an image after the downlink that frees its memory).
        placed_any = True
        while placed_any:
            placed_any = False
            for tid in self.ix.planning_order(t for t in self.ix.tasks if t not in self.state.slots):
                placed_any |= self.place(tid) is not None
        self.changed_since_construct = False

    def place(self, task_id: str, prefer: str | None = None) -> Slot | None:
        """Place ``task_id`` where it finishes earliest (on ``prefer`` if it fits there), or
        record why it cannot go."""
        result = self._best(task_id, prefer)
        if isinstance(result, Slot):
            self.state.add(result)
            self.failures.pop(task_id, None)
            return result
        self.failures[task_id] = result
        return None

    def _best(self, task_id: str, prefer: str | None = None) -> Slot | tuple[Reason, str]:
        ix, st = self.ix, self.state
        task = ix.tasks[task_id]
        why = ix.structural(task)
        if why is not None:
            return why
        lo = max(ix.rel(task.earliest_utc), 0.0)
        data_sats = set()
        for d in task.depends_on:
            dep = st.slots.get(d)
            if dep is None:
                why = self.failures.get(d, ("dependency", "not placed"))
                return "dependency", f"depends on {d}, unplaced ({why[0]})"
            lo = max(lo, dep.end_s)
            if task.kind == "downlink" and ix.tasks[d].kind == "imaging":
                data_sats.add(dep.sat_id)
        if len(data_sats) > 1:
            return "dependency", f"its imaging tasks are on {len(data_sats)} satellites"
        if data_sats and task.sat_id is not None and task.sat_id not in data_sats:
            return "dependency", f"its data is on {next(iter(data_sats))}, it names {task.sat_id}"
        if data_sats:  # a downlink goes where its data is
            options, reason, detail = ix.options_over(task, sorted(data_sats))
            if reason is not None:
                return reason, f"{detail} on {next(iter(data_sats))}, which holds its data"
        else:
            options, reason, detail = ix.options(task_id)
            if reason is not None:
                return reason, detail
        usable = [o for o in options if o.sat_id not in self.low_energy]
        if not usable:
            return "energy", "; ".join(sorted({self.low_energy[o.sat_id] for o in options}))[:300]
        timely = [o for o in usable if o.end_s - o.duration_s >= lo - EPS_S]
        if not timely:
            if task.depends_on:
                return "dependency", "its dependencies end too late for its windows"
            return "deadline", "no window left after its earliest start"
        best: Slot | None = None
        stage = 0
        if prefer is not None:
            for o in timely:
                if o.sat_id == prefer:
                    found = st.fit(task, o, lo, before_s=best.end_s if best is not None else math.inf)
                    if isinstance(found, Slot):
                        best = found
            if best is not None:
                return best
        for o in timely:
            if best is not None and max(o.start_s, lo) + o.duration_s >= best.end_s - EPS_S:
                break
            found = st.fit(task, o, lo, before_s=best.end_s if best is not None else math.inf)
            if isinstance(found, Slot):
                best = found
            else:
                stage = max(stage, found)
        if best is not None:
            return best
        verdict = STAGE_REASONS[stage]
        return verdict, _STAGE_DETAILS[verdict] + f" ({len(timely)} options tried)"

    # -- improvement -------------------------------------------------------------------------

    def improve(self, deadline: float, max_iterations: int | None, only: set[str] | None) -> int:
        ix, st = self.ix, self.state
        limit = max_iterations if max_iterations is not None else math.inf
        iterations = 0
        stale = 0
        tries: Counter[str] = Counter()
        self.deadline = deadline
        while iterations < limit and time.perf_counter() < deadline:
            targets = sorted(
                tid for tid in self.failures
                if tid not in st.slots and self._improvable(tid) and (only is None or tid in only)
            )  # fmt: skip
            if not targets or stale > 200 * len(targets) + 500:
                break
            iterations += 1
            # By priority, less for a target tried often in vain (so every one gets its turns).
            weights = [(ix.tasks[t].priority + 1) / (1 + tries[t]) for t in targets]
            target = self.rng.choices(targets, weights)[0]
            move = self._move if self.rng.random() < 0.7 else self._shake
            if move(target):
                self.accepted += 1
                stale = 0
                tries.clear()
            else:
                stale += 1
                tries[target] += 1
        return iterations

    def _improvable(self, task_id: str) -> bool:
        """Whether the search could place it: it has options (a downlink of imaging tasks: on
        the satellite its data is on, not checked here) and so have its unplaced dependencies."""
        task = self.ix.tasks[task_id]
        if self.ix.structural(task) is not None:
            return False
        if self.ix.data_holders(task) is None:
            options, reason, _ = self.ix.options(task_id)
            if reason is not None or all(o.sat_id in self.low_energy for o in options):
                return False
        return all(d in self.state.slots or self._improvable(d) for d in task.depends_on)

    def _move(self, target: str) -> bool:
        ix, st, rng = self.ix, self.state, self.rng
        needed = self._unplaced_closure(target)
        roots = sorted(t for t in needed if not any(d in needed for d in ix.tasks[t].depends_on))
        root = rng.choice(roots)
        data_sats = sorted({st.slots[d].sat_id for d in ix.tasks[root].depends_on
                            if d in st.slots and ix.tasks[d].kind == "imaging"})  # fmt: skip
        if ix.data_holders(ix.tasks[root]) is not None and data_sats:
            options = ix.options_over(ix.tasks[root], [s for s in data_sats if s in ix.candidate_sats(ix.tasks[root])])[0]
        else:
            options = ix.options(root)[0]
        options = [o for o in options if o.sat_id not in self.low_energy]
        if not options:
            return False
        option = rng.choice(options)
        reason = self.failures.get(target, ("", ""))[0]
        victims = self._in_the_way(option, reason)
        first: set[str] = set()
        then: set[str] = set()
        if reason == "memory" and option.station_id is not None:  # a downlink short of data:
            first = self._with_dependents(self._suppliers(option))  # images that could bring it
        elif reason == "memory":  # an image short of room: downlinks that could make it
            then = self._with_dependents(self._freers(option))
        return self._repair(needed, victims | first | then, option, first, then)

    def _shake(self, target: str) -> bool:
        """A wider move: everything on one of the target's satellites within a few hours of
        one of its options comes out, and goes back in a shuffled order with the target."""
        ix, st, rng = self.ix, self.state, self.rng
        needed = self._unplaced_closure(target)
        roots = sorted(t for t in needed if not any(d in needed for d in ix.tasks[t].depends_on))
        options = [o for o in ix.options(rng.choice(roots))[0] if o.sat_id not in self.low_energy]
        if not options:
            return False
        option = rng.choice(options)
        reach = rng.uniform(1800.0, 4 * 3600.0)
        victims = set(st.busy[option.sat_id].overlapping(option.start_s - reach, option.end_s + reach))
        return self._repair(needed, self._with_dependents({v for v in victims if self._movable(v)}), option)

    def _repair(
        self,
        needed: set[str],
        victims: set[str],
        option: Option,
        first: frozenset[str] | set[str] = frozenset(),
        then: frozenset[str] | set[str] = frozenset(),
    ) -> bool:
        """Take ``victims`` out, place ``needed`` first (then what depends on it), then the
        victims and a few unplaced tasks that could use the option's resources in a shuffled
        weight order; keep the result unless (value, number placed) went down."""
        ix, st, rng = self.ix, self.state, self.rng
        before = (st.value, len(st.slots))
        failures = dict(self.failures)
        removed = [st.remove(v) for v in sorted(victims, key=ix.order_key, reverse=True)]
        for sat in sorted({s.sat_id for s in removed if s.memory_mb < 0}):
            # A downlink taken off a satellite leaves its data there: take its latest images
            # out too until the memory fits again (they go back in, here or elsewhere).
            while not self._sat_consistent(sat, energy=False):
                takes = [t for t in st.busy[sat].ids if st.slots[t].memory_mb > 0 and self._movable(t)]
                if not takes:
                    break
                out = self._with_dependents({max(takes, key=lambda t: st.slots[t].start_s)})
                removed += [st.remove(v) for v in sorted(out, key=ix.order_key, reverse=True)]
                victims = victims | out
        companions = self._companions(option, needed | victims)
        order_key: dict[str, tuple[float, ...]] = {t: (-2e9, *ix.order_key(t)[1:2]) for t in first}
        order_key.update({t: (-1e9, *ix.order_key(t)[1:2]) for t in needed})
        order_key.update({t: (-5e8, *ix.order_key(t)[1:2]) for t in then})
        for t in sorted(needed):
            for dep in ix.dependents.get(t, ()):
                if dep not in st.slots and dep not in order_key and self._improvable(dep):
                    order_key[dep] = (-1e8, *ix.order_key(dep)[1:2])
        for t in victims | companions:
            order_key.setdefault(t, (ix.order_key(t)[0] * (1.0 + 0.3 * rng.random()),))
        inserted = []
        for t in ix.planning_order(order_key, order_key):
            if time.perf_counter() > self.deadline:
                break  # out of time: put back what was there (below)
            if self.place(t, option.sat_id if t in needed or t in first or t in then else None) is not None:
                inserted.append(t)
        touched = {option.sat_id} | {s.sat_id for s in removed}
        after = (st.value, len(st.slots))
        if time.perf_counter() <= self.deadline and after >= before and all(self._sat_consistent(s) for s in touched):
            self.changed_since_construct = True
            return after > before
        for t in reversed(inserted):
            st.remove(t)
        for slot in removed:
            st.add(slot)
        self.failures = failures
        return False

    def _unplaced_closure(self, task_id: str) -> set[str]:
        out, todo = set(), [task_id]
        while todo:
            t = todo.pop()
            if t not in out and t not in self.state.slots:
                out.add(t)
                todo += list(self.ix.tasks[t].depends_on)
        return out

    def _in_the_way(self, option: Option, reason: str) -> set[str]:
        ix, st, rng = self.ix, self.state, self.rng
        victims = set(st.busy[option.sat_id].overlapping(option.start_s, option.end_s))
        if option.station_id is not None:
            station = ix.stations[option.station_id]
            for k in range(station.antennas):
                victims |= set(st.antennas[(station.station_id, k)].overlapping(
                    option.start_s, option.end_s, station.setup_gap_s))  # fmt: skip
        if reason in ("energy", "memory"):
            others = sorted(set(st.busy[option.sat_id].ids) - victims)
            victims |= set(rng.sample(others, min(_LNS_EXTRA_VICTIMS, len(others))))
        return self._with_dependents({v for v in victims if self._movable(v)})

    def _suppliers(self, option: Option) -> set[str]:
        """Up to two imaging tasks placed on another satellite that could run on
        ``option``'s before it (their data would then be there to downlink)."""
        ix, st = self.ix, self.state
        found = sorted(
            tid for tid, slot in st.slots.items()
            if ix.tasks[tid].kind == "imaging" and slot.sat_id != option.sat_id and self._movable(tid)
            and option.sat_id in ix.raw.target_sats.get(tid, ())
            and any(o.start_s < option.end_s for o in ix.options_on(tid, option.sat_id))
        )  # fmt: skip
        return set(self.rng.sample(found, min(2, len(found))))

    def _freers(self, option: Option) -> set[str]:
        """Up to two downlinks placed on another satellite that could run on ``option``'s after
        it (freeing room there), and up to three later images on it (to go back after them)."""
        ix, st, rng = self.ix, self.state, self.rng
        downlinks = sorted(
            tid for tid, slot in st.slots.items()
            if ix.tasks[tid].kind == "downlink" and slot.sat_id != option.sat_id and self._movable(tid)
            and ix.tasks[tid].sat_id is None and ix.data_holders(ix.tasks[tid]) is None
            and any(o.end_s > option.start_s for o in ix.options_on(tid, option.sat_id))
        )  # fmt: skip
        images = sorted(
            tid for tid in st.busy[option.sat_id].ids
            if st.slots[tid].memory_mb > 0 and self._movable(tid) and st.slots[tid].start_s >= option.start_s
        )  # fmt: skip
        return set(rng.sample(downlinks, min(2, len(downlinks)))) | set(rng.sample(images, min(3, len(images))))

    def _movable(self, task_id: str) -> bool:
        """Frozen placements never move; in an incremental re-plan neither do kept ones."""
        slot = self.state.slots[task_id]
        return not slot.frozen and (self.movable is None or task_id in self.movable)

    def _with_dependents(self, victims: set[str]) -> set[str]:
        """``victims`` and what depends on them (placed, not frozen), transitively."""
        st = self.state
        todo = list(victims)
        while todo:
            for dep in self.ix.dependents.get(todo.pop(), ()):
                if dep in st.slots and dep not in victims and self._movable(dep):
                    victims.add(dep)
                    todo.append(dep)
        return victims

    def _companions(self, option: Option, exclude: set[str]) -> set[str]:
        """A few unplaced tasks that could use the freed resources."""
        pool = sorted(
            tid for tid in self.failures
            if tid not in self.state.slots and tid not in exclude and self._uses(tid, option)
            and self._improvable(tid)
        )  # fmt: skip
        return set(self.rng.sample(pool, min(_LNS_COMPANIONS, len(pool))))

    def _uses(self, task_id: str, option: Option) -> bool:
        """Whether ``task_id`` could use ``option``'s satellite or station."""
        task = self.ix.tasks[task_id]
        if task.sat_id is not None and task.sat_id != option.sat_id and (
            task.kind != "downlink" or option.station_id is None
        ):
            return False
        if self.ix.data_holders(task) is not None:
            return any(d in self.state.slots and self.state.slots[d].sat_id == option.sat_id for d in task.depends_on)
        return any(o.sat_id == option.sat_id or (o.station_id is not None and o.station_id == option.station_id)
                   for o in self.ix.options(task_id)[0][:50])  # fmt: skip

    def _sat_consistent(self, sat_id: str, *, energy: bool = True) -> bool:
        """Memory within bounds and energy above reserve with what is placed (a removal can
        break them: an imaging whose data a later downlink frees; a mode cheaper than idle)."""
        st = self.state
        sat = self.ix.sats[sat_id]
        used = sat.memory_used_mb
        for _, _, _, d in st.memory[sat_id]:
            used += d
            if not -1e-9 <= used <= sat.memory_capacity_mb + 1e-9:
                return False
        return not energy or sat_id in self.low_energy or st.energy_ok(sat_id)

    # -- results -----------------------------------------------------------------------------

    def explain(self) -> tuple[Unplaced, ...]:
        """Why each unplaced task is out, against the final state (placing any that now fit).
        Unchanged since the construction's last pass (which placed nothing): its reasons hold."""
        if self.changed_since_construct:
            for tid in self.ix.planning_order(t for t in self.ix.tasks if t not in self.state.slots):
                self.place(tid)
        out = []
        for tid in sorted(t for t in self.ix.tasks if t not in self.state.slots):
            if tid in self.ix.cyclic:
                out.append(Unplaced(tid, "dependency", "its dependencies form a cycle"))
                continue
            reason, detail = self.failures.get(tid, ("dependency", "not tried"))
            out.append(Unplaced(tid, reason, detail))
        return tuple(out)

    def placements(self) -> tuple[Placement, ...]:
        ix = self.ix
        out = []
        for tid, slot in self.state.slots.items():
            kept = self.original.get(tid)
            if kept is not None and kept[0] is slot:
                p = kept[1]
                out.append(p if p.frozen == slot.frozen else _with_frozen(p, slot.frozen))
                continue
            task = ix.tasks[tid]
            sat = ix.sats[slot.sat_id]
            duration = slot.end_s - slot.start_s
            energy = (sat.mode_load_w(sat.idle_mode) + slot.extra_w) * duration / 3600.0
            out.append(Placement(
                task_id=tid, sat_id=slot.sat_id, start_utc=ix.utc(slot.start_s),
                end_utc=ix.utc(slot.end_s),
                station_id=slot.station_id, antenna=slot.antenna, energy_wh=energy,
                memory_mb=-task.memory_mb if task.kind == "downlink" else task.memory_mb,
                frozen=slot.frozen,
            ))  # fmt: skip
        out.sort(key=lambda p: (p.start_utc, p.task_id))
        return tuple(out)


def _with_frozen(p: Placement, frozen: bool) -> Placement:
    return Placement(p.task_id, p.sat_id, p.start_utc, p.end_utc, p.station_id, p.antenna,
                     p.energy_wh, p.memory_mb, frozen)  # fmt: skip


def _where(p: Placement) -> str:
    via = f" via {p.station_id}/{p.antenna}" if p.station_id is not None else ""
    return f"{p.sat_id}{via} at {p.start_utc.isoformat()}"


def _diff(
    planner: _Planner,
    previous: Plan,
    placements: Iterable[Placement],
    unplaced: Iterable[Unplaced],
    cause: str,
) -> tuple[PlanChange, ...]:
    ix = planner.ix
    new = {p.task_id: p for p in placements}
    why_out = {u.task_id: f"{u.reason}: {u.detail}" for u in unplaced}
    old = {
        p.task_id: p for p in previous.placements
        if p.task_id in ix.tasks or p.end_utc > ix.now_utc
    }  # fmt: skip
    changes = []
    for tid in sorted(set(new) | set(old)):
        a, b = old.get(tid), new.get(tid)
        if a is not None and b is not None:
            same = (a.sat_id, a.station_id, a.antenna, a.start_utc, a.end_utc) == (
                b.sat_id, b.station_id, b.antenna, b.start_utc, b.end_utc)  # fmt: skip
            if not same:
                why = planner.dropped.get(tid, "re-placed by the search")
                changes.append(PlanChange(tid, "moved", cause, f"{_where(a)} -> {_where(b)} ({why})"))
        elif b is not None:
            changes.append(PlanChange(tid, "added", cause, f"placed on {_where(b)}"))
        elif a is not None:
            if tid not in ix.tasks:
                detail = "task no longer in the problem"
            else:
                detail = planner.dropped.get(tid, "") + (" -> " if tid in planner.dropped else "")
                detail += why_out.get(tid, "")
            changes.append(PlanChange(tid, "removed", cause, detail))
    return tuple(changes)
