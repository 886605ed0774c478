import { describe, expect, it } from "vitest";
import { ApiClient, ApiError } from "./api/client";
import { fetchReadiness, isDatabaseOutage, outageText, readinessFrom, READY } from "./outage";

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

// What the gateway answers on /readyz while PostgreSQL is away (web/routes/system.py).
const DB_DOWN = {
  error: {
    code: "not_ready",
    message: "not ready: the database is unavailable: connection refused",
    details: { cluster: true, database: false, database_reason: "the database is unavailable: connection refused" },
  },
};

describe("the outage banner", () => {
  it("reads /readyz: ready, the database away, the control node away", async () => {
    const answers = [json({ status: "ready", cluster: true, database: true }), json(DB_DOWN, 503),
      json({ error: { code: "not_ready", message: "not ready", details: { cluster: false, database: true } } }, 503)];
    const client = new ApiClient("", null, async () => answers.shift() as Response);
    expect(await fetchReadiness(client)).toEqual(READY);
    expect(await fetchReadiness(client)).toEqual({ cluster: true, database: false, databaseReason: "the database is unavailable: connection refused" });
    expect(await fetchReadiness(client)).toEqual({ cluster: false, database: true, databaseReason: null });
  });

  it("says nothing when ready, or when the gateway cannot be reached (the badge says that)", async () => {
    expect(outageText(READY)).toBeNull();
    const unreachable = new ApiClient("", null, async () => {
      throw new TypeError("fetch failed");
    });
    expect(await fetchReadiness(unreachable)).toBeNull();
    expect(outageText(null)).toBeNull();
    expect(readinessFrom(new ApiError(502, "http_error", "bad gateway"))).toBeNull();
  });

  it("names the database outage and what still works, not an empty or pending view", () => {
    const text = outageText({ cluster: true, database: false, databaseReason: "the database is unavailable: connection refused" });
    expect(text).toContain("Database unavailable");
    expect(text).toContain("alarms");
    expect(text).toContain("Live positions and events go on");
    expect(text).toContain("connection refused");
    expect(outageText({ cluster: false, database: true, databaseReason: null })).toContain("Control node unreachable");
  });

  it("tells a database refusal from other 503s", () => {
    expect(isDatabaseOutage(new ApiError(503, "database_unavailable", "the database is unavailable"))).toBe(true);
    expect(isDatabaseOutage(new ApiError(503, "unavailable", "the control node is not reachable"))).toBe(false);
    expect(isDatabaseOutage(new Error("x"))).toBe(false);
  });
});
