import { describe, expect, it } from "vitest";
import { ApiClient, ApiError } from "./client";
import type { Fetch } from "./client";

function recording(responses: Response[], urls: string[], headers: Record<string, string>[] = []): Fetch {
  return async (url, init) => {
    urls.push(url);
    headers.push((init?.headers ?? {}) as Record<string, string>);
    const next = responses.shift();
    if (!next) throw new Error("no more responses");
    return next;
  };
}

describe("command history and exports", () => {
  it("asks the fleet's or a satellite's history with its filters and cursor", async () => {
    const urls: string[] = [];
    const page = () => new Response(JSON.stringify({ items: [], next: null }), { status: 200 });
    const client = new ApiClient("", "t", recording([page(), page()], urls));
    const from = new Date(Date.UTC(2026, 11, 3, 7, 0));
    await client.commandHistory({ kinds: ["noop", "set_mode"], statuses: ["failed"], submittedBy: "alice", from }, "123.abc", 20);
    expect(urls[0]).toBe(
      "/api/commands?kind=noop%2Cset_mode&status=failed&submitted_by=alice&from=2026-12-03T07%3A00%3A00.000Z&cursor=123.abc&limit=20",
    );
    await client.commandHistory({ satId: "demo 1" });
    expect(urls[1]).toBe("/api/satellites/demo%201/commands?limit=50");
  });

  it("downloads a CSV with the file name the gateway gives, or says why not", async () => {
    const urls: string[] = [];
    const headers: Record<string, string>[] = [];
    const csv = new Response("time,satellite_id\n", {
      status: 200,
      headers: { "Content-Type": "text/csv", "Content-Disposition": 'attachment; filename="demo-01_telemetry_x.csv"' },
    });
    const refused = new Response(JSON.stringify({ error: { code: "validation_failed", message: "to: too far", details: { field: "to" } } }), { status: 422 });
    const client = new ApiClient("", "t", recording([csv, refused], urls, headers));
    const from = new Date(Date.UTC(2026, 11, 3, 7, 0));
    const file = await client.exportTelemetry("demo-01", from, new Date(from.getTime() + 60_000));
    expect(file.filename).toBe("demo-01_telemetry_x.csv");
    expect(await file.blob.text()).toBe("time,satellite_id\n");
    expect(urls[0]).toContain("/api/satellites/demo-01/telemetry?from=2026-12-03T07%3A00%3A00.000Z&to=2026-12-03T07%3A01%3A00.000Z&format=csv");
    expect(headers[0]?.Accept).toBe("text/csv");
    const error = await client.exportCommands({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).details).toEqual({ field: "to" });
  });
});
