import { describe, expect, it } from "vitest";
import { ApiClient, ApiError } from "./client";
import type { Fetch } from "./client";

interface Seen {
  url: string;
  init: RequestInit | undefined;
}

function fakeFetch(responses: Response[], seen: Seen[]): Fetch {
  return async (url, init) => {
    seen.push({ url, init });
    const next = responses.shift();
    if (!next) throw new Error("no more responses");
    return next;
  };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("ApiClient", () => {
  it("sends the bearer token and builds query strings", async () => {
    const seen: Seen[] = [];
    const client = new ApiClient("http://gw:8080/", "sto_secret", fakeFetch([json({ items: [] })], seen));
    await client.passes({ from: new Date(Date.UTC(2026, 0, 1)), sats: ["a", "b"] });
    expect(seen[0]?.url).toBe("http://gw:8080/api/passes?from=2026-01-01T00%3A00%3A00.000Z&sat=a%2Cb");
    expect((seen[0]?.init?.headers as Record<string, string>).Authorization).toBe("Bearer sto_secret");
  });

  it("sends no Authorization header without a token", async () => {
    const seen: Seen[] = [];
    const client = new ApiClient("", null, fakeFetch([json({ items: [] })], seen));
    await client.nodes();
    expect(seen[0]?.url).toBe("/api/nodes");
    expect((seen[0]?.init?.headers as Record<string, string>).Authorization).toBeUndefined();
  });

  it("turns the gateway's error shape into an ApiError with code and details", async () => {
    const body = { error: { code: "validation_failed", message: "mode: must be one of ...", details: { field: "mode" } } };
    const client = new ApiClient("", "t", fakeFetch([json(body, 422)], []));
    const error = await client.setMode("demo-01", "safe").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, code: "validation_failed", message: "mode: must be one of ...", details: { field: "mode" } });
  });

  it("reports a non-JSON error by its status", async () => {
    const client = new ApiClient("", "t", fakeFetch([new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" })], []));
    await expect(client.alarms()).rejects.toMatchObject({ status: 502, code: "http_error", message: "HTTP 502 Bad Gateway" });
  });

  it("reports a network failure as status 0", async () => {
    const client = new ApiClient("", "t", async () => {
      throw new TypeError("Failed to fetch");
    });
    await expect(client.alarms()).rejects.toMatchObject({ status: 0, code: "network" });
  });

  it("posts commands as JSON with an idempotency key", async () => {
    const seen: Seen[] = [];
    const accepted = { id: "c1", satellite_id: "s 1", kind: "set_mode", status: "accepted" };
    const client = new ApiClient("", "t", fakeFetch([json(accepted, 202)], seen));
    expect(await client.sendCommand("s 1", "set_mode", { mode: "safe" }, "key-1")).toEqual(accepted);
    expect(seen[0]?.url).toBe("/api/satellites/s%201/commands");
    expect(seen[0]?.init?.method).toBe("POST");
    expect(JSON.parse(String(seen[0]?.init?.body))).toEqual({ kind: "set_mode", args: { mode: "safe" } });
    const headers = seen[0]?.init?.headers as Record<string, string>;
    expect(headers["Idempotency-Key"]).toBe("key-1");
    expect(headers["Content-Type"]).toBe("application/json");
  });

  it("pages through every satellite: the first page, then the others at once, in order", async () => {
    const seen: Seen[] = [];
    const sat = (i: number) => ({ id: `s${i}`, name: `S${i}`, mode: "nominal", status: "running", energy_pct: 100, memory_used_mb: 0, memory_capacity_mb: 1 });
    const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => sat(from + i));
    const pages = [ids(0, 1000), ids(1000, 1000), ids(2000, 1)].map((items, i) => json({ items, total: 2001, limit: 1000, offset: 1000 * i }));
    // The later pages answer in reverse order: the result keeps the pages' order.
    let release: () => void = () => {};
    const secondLate = new Promise<void>((resolve) => (release = resolve));
    const fetchFn: Fetch = async (url, init) => {
      seen.push({ url, init });
      const offset = Number(new URL(url, "http://x").searchParams.get("offset"));
      if (offset === 1000) await secondLate;
      if (offset === 2000) release();
      return pages[offset / 1000] as Response;
    };
    const all = await new ApiClient("", "t", fetchFn).satellites();
    expect(all.map((s) => s.id)).toEqual(ids(0, 2001).map((s) => s.id));
    expect(seen.map((s) => s.url)).toEqual(["/api/satellites?limit=1000&offset=0", "/api/satellites?limit=1000&offset=1000", "/api/satellites?limit=1000&offset=2000"]);
  });

  it("asks for one page when it holds them all", async () => {
    const seen: Seen[] = [];
    const client = new ApiClient("", "t", fakeFetch([json({ items: [{ id: "a" }], total: 1, limit: 1000, offset: 0 })], seen));
    expect((await client.satellites()).map((s) => s.id)).toEqual(["a"]);
    expect(seen).toHaveLength(1);
  });

  it("returns nothing for 204", async () => {
    const client = new ApiClient("", "t", fakeFetch([new Response(null, { status: 204 })], []));
    await expect(client.request("DELETE", "/api/satellites/x")).resolves.toBeUndefined();
  });
});
