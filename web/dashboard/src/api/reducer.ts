// The live state the dashboard shows, and how events from /api/events change it. The store calls
// these functions with batches; the unit tests call them directly.
//
// The satellites are the hot part (10,000 satellites send 10,000 telemetry events a second): their
// map and LiveSat objects are updated in place, and `satsVersion` says that they changed. Copying
// a 10,000-entry record and allocating an object per event, four times a second, was most of the
// dashboard's main-thread time. So React state stays coarse: a component reads `sats` from the
// store and subscribes to `satsVersion` (or `satsMembership`, when only the set of satellites
// matters), never to a satellite object's identity. Everything else is immutable as before.

import type { ClusterEvent, ClusterNode, Mode, Satellite } from "./types";
import type { StreamMessage } from "./sse";

/** A satellite as shown: the REST fields, the latest telemetry written over them in place. */
export interface LiveSat {
  id: string;
  name: string;
  mode: Mode;
  status: string;
  energy_pct: number;
  memory_used_mb: number;
  memory_capacity_mb: number;
  tle: Satellite["tle"];
  lat_deg: number | null;
  lon_deg: number | null;
  alt_km: number | null;
  in_sunlight: boolean | null;
  node: string | null;
  beam: string | null;
  /** When the values were measured (ms since the epoch): newer data wins, whatever its source. */
  updated_ms: number;
}

export interface TailPoint {
  t_ms: number;
  energy_pct: number;
  memory_used_mb: number;
  alt_km: number | null;
}

/** A node's change of status, as the cluster panel lists them. */
export interface NodeChange {
  event_id: number;
  at: string;
  name: string;
  role: string;
  status: string;
  restarts: number | null;
}

export interface LiveState {
  /** The id of the last event applied: sent as Last-Event-ID on reconnect. */
  lastEventId: number | null;
  /** id -> satellite; mutated in place by applyMessages (see the top of this file). */
  sats: Map<string, LiveSat>;
  /** Bumped whenever a satellite's values changed. */
  satsVersion: number;
  /** Bumped when the set of satellites may have changed (a REST snapshot). */
  satsMembership: number;
  nodes: Record<string, ClusterNode>;
  /** The latest node changes, newest first (a restart is over in a second: the log keeps it). */
  nodeLog: NodeChange[];
  /** command id -> outcome ("done" or a failure reason), for commands seen finishing. */
  commandOutcomes: Record<string, unknown>;
  /** The satellite whose telemetry tail is kept (the one on the detail page). */
  watched: string | null;
  tail: TailPoint[];
  /** Bumped when REST data must be fetched again: */
  alarmsRevision: number; // an alarm was raised or cleared
  nodesRevision: number; // a node changed
  satsRevision: number; // an event named a satellite we do not have
  tasksRevision: number; // a task changed state, or the scheduler made a new plan
  /** Bumped by a reset event: everything must be reloaded over REST. */
  resets: number;
}

export const MAX_TAIL_POINTS = 3600;
export const MAX_COMMAND_OUTCOMES = 1000;
export const MAX_NODE_LOG = 100;

export function initialState(): LiveState {
  return {
    lastEventId: null,
    sats: new Map(),
    satsVersion: 0,
    satsMembership: 0,
    nodes: {},
    nodeLog: [],
    commandOutcomes: {},
    watched: null,
    tail: [],
    alarmsRevision: 0,
    nodesRevision: 0,
    satsRevision: 0,
    tasksRevision: 0,
    resets: 0,
  };
}

function parseMs(time: string | null | undefined): number {
  if (!time) return 0;
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? 0 : ms;
}

function liveSat(sat: Satellite, updatedMs: number): LiveSat {
  // Always the same fields in the same order: one object shape for every satellite.
  return {
    id: sat.id,
    name: sat.name,
    mode: sat.mode,
    status: sat.status,
    energy_pct: sat.energy_pct,
    memory_used_mb: sat.memory_used_mb,
    memory_capacity_mb: sat.memory_capacity_mb,
    tle: sat.tle ?? null,
    lat_deg: sat.lat_deg ?? null,
    lon_deg: sat.lon_deg ?? null,
    alt_km: sat.alt_km ?? null,
    in_sunlight: sat.in_sunlight ?? null,
    node: sat.node ?? null,
    beam: sat.beam ?? null,
    updated_ms: updatedMs,
  };
}

/** Replace the satellites with a REST snapshot (a new map), keeping live values that are newer
 * than it. */
export function applySnapshot(state: LiveState, snapshot: Satellite[]): LiveState {
  const sats = new Map<string, LiveSat>();
  for (const sat of snapshot) {
    const snapMs = parseMs(sat.updated_at);
    const live = state.sats.get(sat.id);
    const next = liveSat(sat, snapMs);
    if (live && live.updated_ms > snapMs) {
      next.mode = live.mode;
      next.energy_pct = live.energy_pct;
      next.memory_used_mb = live.memory_used_mb;
      next.lat_deg = live.lat_deg;
      next.lon_deg = live.lon_deg;
      next.alt_km = live.alt_km;
      next.in_sunlight = live.in_sunlight;
      next.updated_ms = live.updated_ms;
    }
    sats.set(sat.id, next);
  }
  return { ...state, sats, satsVersion: state.satsVersion + 1, satsMembership: state.satsMembership + 1 };
}

export function applyNodes(state: LiveState, nodes: ClusterNode[]): LiveState {
  const byName: Record<string, ClusterNode> = {};
  for (const node of nodes) byName[node.name] = node;
  return { ...state, nodes: byName };
}

/** Keep the telemetry tail of this satellite (null: none), starting from its history. */
export function watch(state: LiveState, satId: string | null, history: TailPoint[] = []): LiveState {
  return { ...state, watched: satId, tail: history.slice(-MAX_TAIL_POINTS) };
}

/** Apply a batch of stream messages, in order. Events at or before lastEventId are skipped
 * (a resume can repeat the edge of what we have); a reset moves lastEventId to the server's
 * head and asks for a reload. The satellites are updated in place (state.sats is the result's
 * sats too); satsVersion is bumped when one changed. */
export function applyMessages(state: LiveState, messages: StreamMessage[]): LiveState {
  const sats = state.sats;
  let satsChanged = false;
  let nodes: Record<string, ClusterNode> | null = null;
  let outcomes: Record<string, unknown> | null = null;
  let tail: TailPoint[] | null = null;
  let nodeLog: NodeChange[] | null = null;
  let { lastEventId, alarmsRevision, nodesRevision, satsRevision, tasksRevision, resets } = state;

  for (const message of messages) {
    if (message.kind === "reset") {
      lastEventId = message.reset.head_id;
      resets += 1;
      continue;
    }
    const event: ClusterEvent = message.event;
    if (lastEventId !== null && event.id <= lastEventId) continue;
    lastEventId = event.id;
    switch (event.type) {
      case "telemetry": {
        const id = event.sat_id;
        if (id === null) break;
        const sat = sats.get(id);
        if (!sat) {
          satsRevision += 1;
          break;
        }
        const d = event.data;
        if (d.updated_at < sat.updated_ms) break;
        sat.mode = d.mode;
        sat.energy_pct = d.energy_pct;
        sat.memory_used_mb = d.memory_used_mb;
        sat.lat_deg = d.lat_deg ?? null;
        sat.lon_deg = d.lon_deg ?? null;
        sat.alt_km = d.alt_km ?? null;
        sat.in_sunlight = d.in_sunlight ?? null;
        sat.updated_ms = d.updated_at;
        satsChanged = true;
        if (id === state.watched) {
          tail ??= state.tail.slice();
          const last = tail[tail.length - 1];
          if (!last || d.updated_at > last.t_ms) {
            tail.push({ t_ms: d.updated_at, energy_pct: d.energy_pct, memory_used_mb: d.memory_used_mb, alt_km: d.alt_km ?? null });
          }
        }
        break;
      }
      case "state": {
        const sat = event.sat_id === null ? undefined : sats.get(event.sat_id);
        if (!sat) {
          satsRevision += 1;
          break;
        }
        sat.mode = event.data.to;
        satsChanged = true;
        break;
      }
      case "command": {
        outcomes ??= { ...state.commandOutcomes };
        outcomes[event.data.command_id] = event.data.outcome;
        break;
      }
      case "alarm":
        alarmsRevision += 1;
        break;
      case "task":
      case "plan":
        tasksRevision += 1;
        break;
      case "node": {
        nodes ??= { ...state.nodes };
        const name = event.data.name;
        const previous = nodes[name]?.status;
        nodes[name] = { ...nodes[name], ...event.data };
        nodesRevision += 1;
        if (previous === event.data.status) break; // BEAM repeats a status as a stop proceeds
        nodeLog ??= state.nodeLog.slice();
        nodeLog.unshift({ event_id: event.id, at: event.at, name, role: event.data.role, status: event.data.status, restarts: event.data.restarts ?? null });
        break;
      }
    }
  }

  if (outcomes !== null) {
    const entries = Object.entries(outcomes);
    // Insertion order is arrival order: keep the newest.
    if (entries.length > MAX_COMMAND_OUTCOMES) outcomes = Object.fromEntries(entries.slice(-MAX_COMMAND_OUTCOMES));
  }
  if (tail !== null && tail.length > MAX_TAIL_POINTS) tail = tail.slice(-MAX_TAIL_POINTS);
  if (nodeLog !== null && nodeLog.length > MAX_NODE_LOG) nodeLog = nodeLog.slice(0, MAX_NODE_LOG);
  return {
    ...state,
    lastEventId,
    satsVersion: satsChanged ? state.satsVersion + 1 : state.satsVersion,
    nodes: nodes ?? state.nodes,
    nodeLog: nodeLog ?? state.nodeLog,
    commandOutcomes: outcomes ?? state.commandOutcomes,
    tail: tail ?? state.tail,
    alarmsRevision,
    nodesRevision,
    satsRevision,
    tasksRevision,
    resets,
  };
}
