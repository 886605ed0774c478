// The mission scheduler's view as data: timeline rows (per satellite and per station) from the
// tasks and passes, the unplaced tasks with their reasons, and the creation form's request body.
// Pure functions: the view renders them, the unit tests check them.

import type { Pass, Task, TaskKind, TaskReason, TaskState } from "./api/types";

export interface Bar {
  key: string;
  startMs: number;
  endMs: number;
  /** "pass" for a pass, else the task's kind. */
  kind: "pass" | TaskKind;
  status: TaskState | null;
  taskId: number | null;
  label: string;
}

export interface Row {
  id: string;
  bars: Bar[];
}

export interface Timeline {
  satellites: Row[];
  stations: Row[];
}

/** When a task ran or runs: its placement, else (done, failed) when it started and finished. */
export function taskSpan(task: Task): { startMs: number; endMs: number; satId: string | null; stationId: string | null } | null {
  if (task.placement) {
    return {
      startMs: Date.parse(task.placement.start),
      endMs: Date.parse(task.placement.end),
      satId: task.placement.satellite_id,
      stationId: task.placement.station_id,
    };
  }
  if (task.started_at) {
    const startMs = Date.parse(task.started_at);
    const endMs = task.finished_at ? Date.parse(task.finished_at) : startMs + task.duration_s * 1000;
    return { startMs, endMs, satId: task.satellite_id, stationId: task.ground_station_id };
  }
  return null;
}

/** Rows between fromMs and toMs: every satellite and station named by a pass or a task, their
 * passes and their tasks clipped to the window, rows sorted by id and bars by start. */
export function timeline(tasks: Task[], passes: Pass[], fromMs: number, toMs: number): Timeline {
  const sats = new Map<string, Bar[]>();
  const stations = new Map<string, Bar[]>();
  const add = (rows: Map<string, Bar[]>, id: string, bar: Bar) => {
    if (bar.endMs <= fromMs || bar.startMs >= toMs) return;
    const clipped = { ...bar, startMs: Math.max(bar.startMs, fromMs), endMs: Math.min(bar.endMs, toMs) };
    const list = rows.get(id) ?? [];
    list.push(clipped);
    rows.set(id, list);
  };
  for (const p of passes) {
    const bar: Bar = {
      key: `pass-${p.satellite_id}-${p.station_id}-${p.aos}`, startMs: Date.parse(p.aos), endMs: Date.parse(p.los),
      kind: "pass", status: null, taskId: null, label: `${p.satellite_id} over ${p.station_id}`,
    };
    add(sats, p.satellite_id, bar);
    add(stations, p.station_id, bar);
  }
  for (const task of tasks) {
    const span = taskSpan(task);
    if (!span) continue;
    const bar: Bar = {
      key: `task-${task.id}`, startMs: span.startMs, endMs: span.endMs, kind: task.kind, status: task.status,
      taskId: task.id, label: `#${task.id} ${task.kind} (${task.status})`,
    };
    if (span.satId) add(sats, span.satId, bar);
    if (span.stationId) add(stations, span.stationId, bar);
  }
  const rows = (map: Map<string, Bar[]>): Row[] =>
    [...map.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, bars]) => ({ id, bars: bars.sort((a, b) => a.startMs - b.startMs) }));
  return { satellites: rows(sats), stations: rows(stations) };
}

/** Operator-readable words for each reason code. */
export const REASON_TEXT: Record<TaskReason, string> = {
  window: "no window long enough",
  deadline: "no window before the deadline",
  horizon: "beyond the planning horizon",
  energy: "not enough energy",
  memory: "not enough memory",
  station_conflict: "station busy or down",
  satellite_busy: "satellite busy",
  dependency: "waits for a task that is not placed",
  unknown_satellite: "unknown satellite",
  unknown_station: "unknown station",
  satellite_unavailable: "satellite in safe mode or lost",
  execution_failed: "execution failed (retried)",
  cancelled: "cancelled",
};

/** Pending tasks that the plan left out, most valuable first, with why. */
export function unplaced(tasks: Task[]): { task: Task; why: string }[] {
  return tasks
    .filter((t) => t.status === "pending" && t.reason !== null)
    .sort((a, b) => b.priority - a.priority || a.id - b.id)
    .map((task) => ({ task, why: `${REASON_TEXT[task.reason as TaskReason] ?? task.reason}${task.reason_detail ? `: ${task.reason_detail}` : ""}` }));
}

export interface TaskForm {
  kind: TaskKind;
  satelliteId: string;
  stationId: string;
  priority: string;
  durationS: string;
  deadlineMin: string;
  targetLat: string;
  targetLon: string;
  dependsOn: string;
}

export type FormResult = { ok: true; body: Record<string, unknown> } | { ok: false; field: keyof TaskForm; message: string };

function number(text: string): number | null {
  if (text.trim() === "") return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : Number.NaN;
}

/** The POST /api/tasks body for the form, or the first field to fix (the server checks again). */
export function taskBody(form: TaskForm, nowMs: number): FormResult {
  const body: Record<string, unknown> = { kind: form.kind };
  if (form.satelliteId.trim()) body.satellite_id = form.satelliteId.trim();
  if (form.kind === "downlink" && form.stationId.trim()) body.ground_station_id = form.stationId.trim();
  const priority = number(form.priority);
  if (priority !== null) {
    if (!Number.isInteger(priority) || priority < 0 || priority > 100) return { ok: false, field: "priority", message: "an integer 0..100" };
    body.priority = priority;
  }
  const duration = number(form.durationS);
  if (duration !== null) {
    if (!(duration > 0 && duration <= 86400)) return { ok: false, field: "durationS", message: "seconds, more than 0 and at most 86400" };
    body.duration_s = duration;
  }
  const deadline = number(form.deadlineMin);
  if (deadline !== null) {
    if (!(deadline > 0)) return { ok: false, field: "deadlineMin", message: "minutes from now, more than 0" };
    body.deadline = new Date(nowMs + deadline * 60_000).toISOString();
  }
  const dependsOn = number(form.dependsOn);
  if (dependsOn !== null) {
    if (!Number.isInteger(dependsOn) || dependsOn < 1) return { ok: false, field: "dependsOn", message: "a task id" };
    body.depends_on = dependsOn;
  }
  if (form.kind === "imaging") {
    const lat = number(form.targetLat);
    const lon = number(form.targetLon);
    if (lat === null || Number.isNaN(lat) || lat < -90 || lat > 90) return { ok: false, field: "targetLat", message: "latitude -90..90" };
    if (lon === null || Number.isNaN(lon) || lon < -180 || lon > 180) return { ok: false, field: "targetLon", message: "longitude -180..180" };
    body.args = { target_lat_deg: lat, target_lon_deg: lon };
  } else if (form.kind === "command") {
    body.args = { command: "noop" };
  }
  return { ok: true, body };
}

/** The form field a server 422 names (details.field), when the form has it. */
export function formFieldOf(serverField: unknown): keyof TaskForm | null {
  const map: Record<string, keyof TaskForm> = {
    satellite_id: "satelliteId", ground_station_id: "stationId", priority: "priority", duration_s: "durationS",
    deadline: "deadlineMin", depends_on: "dependsOn", "args.target_lat_deg": "targetLat", "args.target_lon_deg": "targetLon",
  };
  return typeof serverField === "string" ? (map[serverField] ?? null) : null;
}
