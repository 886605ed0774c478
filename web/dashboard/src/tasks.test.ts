import { describe, expect, it } from "vitest";
import type { Pass, Task } from "./api/types";
import { formFieldOf, taskBody, timeline, unplaced } from "./tasks";
import type { TaskForm } from "./tasks";

const T0 = Date.parse("2030-01-01T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

function task(id: number, changes: Partial<Task> = {}): Task {
  return {
    id, kind: "imaging", status: "pending", satellite_id: "sat-1", ground_station_id: null, args: {}, priority: 50,
    earliest_start: null, deadline: null, duration_s: 60, attempts: 0, reason: null, reason_detail: "", placement: null,
    ...changes,
  };
}

const pass: Pass = {
  satellite_id: "sat-1", station_id: "gs", aos: iso(T0 + 60_000), tca: iso(T0 + 120_000), los: iso(T0 + 180_000),
  max_el_deg: 40, aos_cut: false, los_cut: false,
};

describe("timeline", () => {
  it("puts passes and placed tasks on their satellite and station rows, clipped to the window", () => {
    const downlink = task(2, {
      kind: "downlink", status: "scheduled",
      placement: { satellite_id: "sat-1", station_id: "gs", start: iso(T0 + 90_000), end: iso(T0 + 120_000) },
    });
    const early = task(3, { status: "done", started_at: iso(T0 - 120_000), finished_at: iso(T0 + 30_000) });
    const rows = timeline([downlink, early, task(4)], [pass], T0, T0 + 3_600_000);
    expect(rows.satellites.map((r) => r.id)).toEqual(["sat-1"]);
    expect(rows.satellites[0]?.bars.map((b) => [b.kind, b.startMs - T0])).toEqual([["imaging", 0], ["pass", 60_000], ["downlink", 90_000]]);
    expect(rows.stations).toEqual([{ id: "gs", bars: [expect.objectContaining({ kind: "pass" }), expect.objectContaining({ taskId: 2, status: "scheduled" })] }]);
  });

  it("leaves out what is outside the window and tasks that never ran", () => {
    const rows = timeline([task(1, { status: "failed" })], [pass], T0 + 200_000, T0 + 300_000);
    expect(rows).toEqual({ satellites: [], stations: [] });
  });
});

describe("unplaced", () => {
  it("lists pending tasks with a reason, most valuable first, in words", () => {
    const list = unplaced([
      task(1, { reason: "energy", priority: 10 }),
      task(2, { reason: "station_conflict", reason_detail: "gs down", priority: 90 }),
      task(3, { status: "scheduled" }),
    ]);
    expect(list.map((u) => [u.task.id, u.why])).toEqual([[2, "station busy or down: gs down"], [1, "not enough energy"]]);
  });
});

describe("taskBody", () => {
  const form: TaskForm = {
    kind: "imaging", satelliteId: " sat-1 ", stationId: "gs", priority: "70", durationS: "30", deadlineMin: "15",
    targetLat: "45", targetLon: "7.5", dependsOn: "",
  };

  it("builds the request body (a station only for a downlink)", () => {
    expect(taskBody(form, T0)).toEqual({
      ok: true,
      body: { kind: "imaging", satellite_id: "sat-1", priority: 70, duration_s: 30, deadline: iso(T0 + 900_000),
              args: { target_lat_deg: 45, target_lon_deg: 7.5 } },
    });
    const downlink = taskBody({ ...form, kind: "downlink", dependsOn: "4" }, T0);
    expect(downlink.ok && downlink.body).toMatchObject({ kind: "downlink", ground_station_id: "gs", depends_on: 4 });
  });

  it("names the first field to fix", () => {
    expect(taskBody({ ...form, priority: "101" }, T0)).toMatchObject({ ok: false, field: "priority" });
    expect(taskBody({ ...form, targetLat: "" }, T0)).toMatchObject({ ok: false, field: "targetLat" });
    expect(taskBody({ ...form, durationS: "-1" }, T0)).toMatchObject({ ok: false, field: "durationS" });
    expect(taskBody({ ...form, kind: "downlink", dependsOn: "x" }, T0)).toMatchObject({ ok: false, field: "dependsOn" });
  });

  it("maps the server's field names to the form's", () => {
    expect(formFieldOf("deadline")).toBe("deadlineMin");
    expect(formFieldOf("args.mode")).toBeNull();
  });
});
