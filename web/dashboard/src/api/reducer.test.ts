import { describe, expect, it } from "vitest";
import { MAX_COMMAND_OUTCOMES, MAX_NODE_LOG, applyMessages, applyNodes, applySnapshot, initialState, watch } from "./reducer";
import type { LiveState } from "./reducer";
import type { StreamMessage } from "./sse";
import type { Satellite, TelemetryData } from "./types";

const T0 = Date.UTC(2026, 10, 28, 12, 0, 0);

function sat(id: string, overrides: Partial<Satellite> = {}): Satellite {
  return {
    id,
    name: id.toUpperCase(),
    mode: "nominal",
    status: "running",
    energy_pct: 90,
    memory_used_mb: 10,
    memory_capacity_mb: 1024,
    lat_deg: 1,
    lon_deg: 2,
    alt_km: 550,
    node: "sats1@h",
    updated_at: new Date(T0).toISOString(),
    ...overrides,
  };
}

function telemetry(id: number, satId: string, atMs: number, extra: Partial<TelemetryData> = {}): StreamMessage {
  const data: TelemetryData = { energy_pct: 50, memory_used_mb: 20, mode: "nominal", lat_deg: 10, lon_deg: 20, alt_km: 551, in_sunlight: true, updated_at: atMs, ...extra };
  return { kind: "event", event: { id, type: "telemetry", sat_id: satId, at: new Date(atMs).toISOString(), data } };
}

function withSats(...sats: Satellite[]): LiveState {
  return applySnapshot(initialState(), sats);
}

describe("applyMessages", () => {
  it("applies telemetry and remembers the last event id", () => {
    const state = applyMessages(withSats(sat("a")), [telemetry(5, "a", T0 + 1000)]);
    expect(state.lastEventId).toBe(5);
    expect(state.sats.get("a")).toMatchObject({ energy_pct: 50, memory_used_mb: 20, lat_deg: 10, lon_deg: 20, alt_km: 551, updated_ms: T0 + 1000 });
    expect(state.sats.get("a")?.name).toBe("A"); // static fields from the snapshot stay
  });

  it("skips events at or before the last applied id (the edge a resume repeats)", () => {
    let state = applyMessages(withSats(sat("a")), [telemetry(5, "a", T0 + 1000, { energy_pct: 50 })]);
    state = applyMessages(state, [telemetry(4, "a", T0 + 3000, { energy_pct: 1 }), telemetry(5, "a", T0 + 3000, { energy_pct: 2 })]);
    expect(state.sats.get("a")?.energy_pct).toBe(50);
    state = applyMessages(state, [telemetry(6, "a", T0 + 3000, { energy_pct: 3 })]);
    expect(state.sats.get("a")?.energy_pct).toBe(3);
    expect(state.lastEventId).toBe(6);
  });

  it("never lets older measurements overwrite newer ones", () => {
    const state = applyMessages(withSats(sat("a")), [telemetry(1, "a", T0 + 5000, { energy_pct: 70 }), telemetry(2, "a", T0 + 4000, { energy_pct: 10 })]);
    expect(state.sats.get("a")?.energy_pct).toBe(70);
    expect(state.lastEventId).toBe(2);
  });

  it("a reset moves to the server's head and asks for a reload", () => {
    let state = applyMessages(withSats(sat("a")), [telemetry(900, "a", T0 + 1000)]);
    state = applyMessages(state, [{ kind: "reset", reset: { reason: "too_old", last_event_id: 900, head_id: 12 } }, telemetry(13, "a", T0 + 2000, { energy_pct: 33 })]);
    expect(state.resets).toBe(1);
    expect(state.lastEventId).toBe(13);
    expect(state.sats.get("a")?.energy_pct).toBe(33); // ids restarted below 900 (control node restart): still applied
  });

  it("state events change the mode; unknown satellites ask for a snapshot", () => {
    const state = applyMessages(withSats(sat("a")), [
      { kind: "event", event: { id: 1, type: "state", sat_id: "a", at: "", data: { from: "nominal", to: "safe", reason: "set_mode" } } },
      telemetry(2, "zz", T0 + 1000),
    ]);
    expect(state.sats.get("a")?.mode).toBe("safe");
    expect(state.sats.get("zz")).toBeUndefined();
    expect(state.satsRevision).toBe(1);
  });

  it("records command outcomes, bounded", () => {
    const messages: StreamMessage[] = Array.from({ length: MAX_COMMAND_OUTCOMES + 5 }, (_, i) => ({
      kind: "event",
      event: { id: i + 1, type: "command", sat_id: "a", at: "", data: { command_id: `c-${i}`, outcome: i === MAX_COMMAND_OUTCOMES + 4 ? ["invalid_transition", "safe", "science"] : "done" } },
    }));
    const state = applyMessages(withSats(sat("a")), messages);
    expect(Object.keys(state.commandOutcomes)).toHaveLength(MAX_COMMAND_OUTCOMES);
    expect(state.commandOutcomes["c-0"]).toBeUndefined();
    expect(state.commandOutcomes["c-5"]).toBe("done");
    expect(state.commandOutcomes[`c-${MAX_COMMAND_OUTCOMES + 4}`]).toEqual(["invalid_transition", "safe", "science"]);
  });

  it("node events update the node and ask for a node reload; alarm events bump the alarm revision", () => {
    let state = applyNodes(initialState(), [{ name: "sats1@h", role: "sats", status: "up", restarts: 0, os_pid: 42, satellites: 12 }]);
    state = applyMessages(state, [
      { kind: "event", event: { id: 1, type: "node", sat_id: null, at: "", data: { name: "sats1@h", role: "sats", status: "down", restarts: 1 } } },
      { kind: "event", event: { id: 2, type: "alarm", sat_id: "a", at: "", data: { alarm: "low_energy" } } },
    ]);
    expect(state.nodes["sats1@h"]).toMatchObject({ status: "down", restarts: 1, os_pid: 42, satellites: 12 });
    expect(state.nodeLog).toEqual([{ event_id: 1, at: "", name: "sats1@h", role: "sats", status: "down", restarts: 1 }]);
    expect(state.nodesRevision).toBe(1);
    expect(state.alarmsRevision).toBe(1);
  });

  it("keeps a telemetry tail for the watched satellite only", () => {
    let state = watch(withSats(sat("a"), sat("b")), "a", [{ t_ms: T0, energy_pct: 90, memory_used_mb: 10, alt_km: 550 }]);
    state = applyMessages(state, [telemetry(1, "a", T0 + 1000), telemetry(2, "b", T0 + 1000), telemetry(3, "a", T0 + 2000, { alt_km: null })]);
    expect(state.tail.map((p) => p.t_ms)).toEqual([T0, T0 + 1000, T0 + 2000]);
    expect(state.tail[2]?.alt_km).toBeNull();
    expect(watch(state, null).tail).toEqual([]);
  });

  it("returns the same objects and version when nothing changed (no needless re-render)", () => {
    const state = withSats(sat("a"));
    const next = applyMessages(state, [{ kind: "event", event: { id: 1, type: "alarm", sat_id: "a", at: "", data: {} } }]);
    expect(next.sats).toBe(state.sats);
    expect(next.satsVersion).toBe(state.satsVersion);
    expect(next.nodes).toBe(state.nodes);
  });

  it("updates satellites in place and bumps satsVersion, not satsMembership", () => {
    const state = withSats(sat("a"), sat("b"));
    const a = state.sats.get("a");
    const next = applyMessages(state, [telemetry(1, "a", T0 + 1000, { energy_pct: 12, mode: "science" })]);
    expect(next.sats).toBe(state.sats);
    expect(next.sats.get("a")).toBe(a);
    expect(a).toMatchObject({ energy_pct: 12, mode: "science", updated_ms: T0 + 1000 });
    expect(next.satsVersion).toBe(state.satsVersion + 1);
    expect(next.satsMembership).toBe(state.satsMembership);
    // An old measurement changes nothing, so no new version either.
    expect(applyMessages(next, [telemetry(2, "a", T0, { energy_pct: 1 })]).satsVersion).toBe(next.satsVersion);
  });
});

describe("node log", () => {
  it("keeps every change newest first, bounded, even when they come in one batch", () => {
    const messages: StreamMessage[] = ["down", "down", "starting", "up"].map((status, i) => ({
      kind: "event",
      event: { id: i + 1, type: "node", sat_id: null, at: `t${i}`, data: { name: "n@h", role: "sats", status, restarts: 1 } },
    }));
    let state = applyMessages(initialState(), messages);
    expect(state.nodeLog.map((c) => c.status)).toEqual(["up", "starting", "down"]); // the repeat is not a change
    expect(state.nodes["n@h"]?.status).toBe("up");
    const many: StreamMessage[] = Array.from({ length: MAX_NODE_LOG + 10 }, (_, i) => ({
      kind: "event",
      event: { id: 100 + i, type: "node", sat_id: null, at: "", data: { name: "n@h", role: "sats", status: i % 2 ? "up" : "down" } },
    }));
    state = applyMessages(state, many);
    expect(state.nodeLog).toHaveLength(MAX_NODE_LOG);
    expect(state.nodeLog[0]?.event_id).toBe(100 + MAX_NODE_LOG + 9);
  });
});

describe("applySnapshot", () => {
  it("keeps live values newer than the snapshot and drops satellites that are gone", () => {
    let state = applyMessages(withSats(sat("a"), sat("b")), [telemetry(1, "a", T0 + 10_000, { energy_pct: 42 })]);
    const before = state;
    state = applySnapshot(state, [sat("a", { energy_pct: 99, name: "renamed", updated_at: new Date(T0 + 5000).toISOString() })]);
    expect(state.sats).not.toBe(before.sats);
    expect(state.satsMembership).toBe(before.satsMembership + 1);
    expect(state.sats.get("a")).toMatchObject({ energy_pct: 42, name: "renamed", updated_ms: T0 + 10_000 });
    expect(state.sats.get("b")).toBeUndefined();
    state = applySnapshot(state, [sat("a", { energy_pct: 98, updated_at: new Date(T0 + 20_000).toISOString() })]);
    expect(state.sats.get("a")?.energy_pct).toBe(98);
  });
});
