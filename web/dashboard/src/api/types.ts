// Shapes of the gateway's JSON (see GET /api/openapi.json). Times are RFC 3339 UTC strings.

export const MODES = ["safe", "standby", "nominal", "science", "downlink", "maintenance"] as const;
export type Mode = (typeof MODES)[number];

export const COMMAND_KINDS = ["set_mode", "collect", "downlink", "reboot", "noop", "set_tle"] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export type Role = "viewer" | "operator" | "admin";

export interface Tle {
  line1: string;
  line2: string;
}

export interface Satellite {
  id: string;
  name: string;
  mode: Mode;
  status: string;
  energy_pct: number;
  memory_used_mb: number;
  memory_capacity_mb: number;
  tle?: Tle | null;
  lat_deg?: number | null;
  lon_deg?: number | null;
  alt_km?: number | null;
  in_sunlight?: boolean | null;
  node?: string | null;
  beam?: string | null;
  updated_at?: string | null;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Items<T> {
  items: T[];
}

export interface ClusterNode {
  name: string;
  role: string;
  status: string;
  restarts?: number;
  os_pid?: number | null;
  satellites?: number;
  joins?: number; // a BEAM node: how often it joined the cluster (as the answering node saw it)
  leaves?: number;
  beam?: string;
}

export interface Alarm {
  id: number;
  satellite_id: string;
  kind: string;
  severity: "info" | "warning" | "critical";
  message: string;
  raised_at: string;
  cleared_at?: string | null;
  cleared_by?: string | null;
}

export interface GroundStation {
  id: string;
  name: string;
  lat_deg: number;
  lon_deg: number;
  alt_m: number;
  min_el_deg: number;
  downlink_mbps: number;
  active: boolean;
  antennas: number;
  unavailable: { from: string; to: string }[];
}

/** What PUT /api/ground-stations/{id} replaces (every field but the id). */
export interface StationFields {
  name: string;
  lat_deg: number;
  lon_deg: number;
  alt_m?: number;
  min_el_deg?: number;
  downlink_mbps?: number;
  active?: boolean;
  antennas?: number;
  unavailable?: { from: string; to: string }[];
}

export interface StationEdited {
  station: GroundStation;
  changed: boolean;
  request_id: number | null;
}

export interface TleEntry {
  line1: string;
  line2: string;
  valid_from: string;
  valid_to: string | null;
}

export interface TleChanged {
  satellite: Satellite;
  command_id: string;
}

export interface Pass {
  satellite_id: string;
  station_id: string;
  aos: string;
  tca: string;
  los: string;
  max_el_deg: number;
  aos_cut: boolean;
  los_cut: boolean;
}

export type CommandStatus = "queued" | "sent" | "done" | "failed" | "expired";
export const COMMAND_STATUSES: readonly CommandStatus[] = ["queued", "sent", "done", "failed", "expired"];

export interface Command {
  id: string;
  satellite_id: string;
  kind: string;
  args: Record<string, unknown>;
  status: CommandStatus;
  attempts: number;
  created_at: string;
  result?: unknown;
  idempotency_key?: string | null;
  submitted_by?: string;
  sent_at?: string | null;
  finished_at?: string | null;
}

/** A page of the command history, newest first; ``next`` is the cursor of the older page. */
export interface CommandPage {
  items: Command[];
  next: string | null;
}

export interface CommandAccepted {
  id: string;
  satellite_id: string;
  kind: string;
  status: "accepted";
}

export interface TelemetrySample {
  time: string;
  energy_pct: number;
  memory_used_mb: number;
  mode?: string;
  lat_deg?: number | null;
  lon_deg?: number | null;
  alt_km?: number | null;
  in_sunlight?: boolean | null;
  samples?: number;
  /** buckets only: each parameter's min, mean and max over the bucket */
  min?: TelemetryStats;
  avg?: TelemetryStats;
  max?: TelemetryStats;
}

export interface TelemetryStats {
  energy_pct: number | null;
  memory_used_mb: number | null;
  alt_km: number | null;
}

export interface TelemetryHistory {
  satellite_id: string;
  start: string;
  end: string;
  step_s: number | null;
  items: TelemetrySample[];
}

export interface TrackPoint {
  time: string;
  lat_deg: number;
  lon_deg: number;
  alt_km: number;
  in_sunlight?: boolean;
}

export interface Track {
  satellite_id: string;
  period_s: number;
  from: string;
  to: string;
  step_s: number;
  items: TrackPoint[];
}

export interface Session {
  role: Role;
  name: string;
  anonymous: boolean;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> | null };
}

/** POST /api/satellites/import: one item per satellite sent, in order. */
export interface ImportResult {
  created: number;
  items: { id: string; status: number; error?: ErrorBody["error"] }[];
}

// One event of GET /api/events (the JSON in its `data:` line).
export interface TelemetryData {
  energy_pct: number;
  memory_used_mb: number;
  mode: Mode;
  lat_deg?: number | null;
  lon_deg?: number | null;
  alt_km?: number | null;
  in_sunlight?: boolean | null;
  updated_at: number; // ms since the epoch
}

export interface StateData {
  from: Mode;
  to: Mode;
  reason: string;
}

export interface CommandData {
  command_id: string;
  outcome: unknown; // "done" or a failure reason
}

export interface NodeData {
  name: string;
  role: string;
  status: string;
  restarts?: number;
  beam?: string;
}

export interface ResetData {
  reason: string;
  last_event_id: number | null;
  head_id: number;
}

interface EventBase<T extends string, D> {
  id: number;
  type: T;
  sat_id: string | null;
  at: string;
  data: D;
}

export type ClusterEvent =
  | EventBase<"telemetry", TelemetryData>
  | EventBase<"state", StateData>
  | EventBase<"command", CommandData>
  | EventBase<"alarm", Record<string, unknown>>
  | EventBase<"node", NodeData>
  | EventBase<"task", TaskData>
  | EventBase<"plan", PlanData>;

export const EVENT_TYPES = ["telemetry", "state", "command", "alarm", "node", "task", "plan"] as const;

// The mission scheduler (GET /api/tasks, /api/plan; py_nodes/vocabulary.py holds these lists).
export const TASK_KINDS = ["imaging", "downlink", "maintenance", "command"] as const;
export type TaskKind = (typeof TASK_KINDS)[number];
export const TASK_STATES = ["pending", "scheduled", "running", "done", "failed", "cancelled"] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const TASK_REASONS = [
  "window", "deadline", "horizon", "energy", "memory", "station_conflict", "satellite_busy", "dependency",
  "unknown_satellite", "unknown_station", "satellite_unavailable", "execution_failed", "cancelled",
] as const;
export type TaskReason = (typeof TASK_REASONS)[number];
export const PLAN_CAUSES = [
  "task_added", "task_cancelled", "station_down", "station_up", "satellite_unavailable",
  "execution_failed", "freeze_passed", "manual", "takeover",
] as const;
export type PlanCause = (typeof PLAN_CAUSES)[number];

export interface Placement {
  satellite_id: string;
  station_id: string | null;
  start: string;
  end: string;
  attempt?: number;
  plan_run_id?: number;
}

export interface Task {
  id: number;
  kind: TaskKind;
  status: TaskState;
  satellite_id: string | null;
  ground_station_id: string | null;
  args: Record<string, unknown>;
  priority: number;
  earliest_start: string | null;
  deadline: string | null;
  duration_s: number;
  attempts: number;
  reason: TaskReason | null;
  reason_detail: string;
  placement: Placement | null;
  started_at?: string | null;
  finished_at?: string | null;
  updated_at?: string;
}

export interface PlanRun {
  id: number;
  at: string;
  cause: PlanCause;
  detail: string;
  solve_ms: number;
  placed: number;
  unplaced: number;
  moved: number;
}

export interface Plan {
  run: PlanRun | null;
  unplaced: { task_id: number; reason: TaskReason; detail: string }[];
  runs: PlanRun[];
  /** What the newest run changed, and why. */
  changes: { task_id: number; change: "added" | "moved" | "removed"; detail: string }[];
}

export interface TaskData {
  id: number;
  kind: TaskKind;
  status: TaskState;
  reason: TaskReason | null;
}

export interface PlanData {
  run_id: number;
  cause: PlanCause;
  placed: number;
  unplaced: number;
}
