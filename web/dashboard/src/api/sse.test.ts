import { describe, expect, it } from "vitest";
import { EventStream, SseParser, decodeFrame } from "./sse";
import type { ConnectionState, StreamMessage } from "./sse";

describe("SseParser", () => {
  it("parses frames split anywhere across chunks, ignoring comments", () => {
    const parser = new SseParser();
    const text = 'retry: 2000\n: connected\n\nid: 7\nevent: state\ndata: {"a":1}\n\n: hb\n\nid: 8\nevent: telemetry\ndata: {"b":\n\n';
    const frames = [];
    for (let i = 0; i < text.length; i += 3) frames.push(...parser.push(text.slice(i, i + 3)));
    expect(frames).toEqual([
      { id: "7", event: "state", data: '{"a":1}' },
      { id: "8", event: "telemetry", data: '{"b":' },
    ]);
  });

  it("joins multi-line data and accepts CRLF", () => {
    const parser = new SseParser();
    expect(parser.push("data: one\r\ndata: two\r\n\r\n")).toEqual([{ id: null, event: "message", data: "one\ntwo" }]);
  });

  it("accepts lone CR line ends, and a CRLF split between two chunks", () => {
    const parser = new SseParser();
    // A CR at the end of a chunk may be half a CRLF: the blank line is seen with the next byte.
    expect(parser.push("data: a\rdata: b\r\r")).toEqual([]);
    expect(parser.push("id: 4\r")).toEqual([{ id: null, event: "message", data: "a\nb" }]);
    expect(parser.push("\ndata: c\r\n\r")).toEqual([]);
    expect(parser.push("\n")).toEqual([{ id: "4", event: "message", data: "c" }]);
  });

  it("reads fields as the WHATWG rules say: no space, no colon, unknown names, NUL in an id", () => {
    const parser = new SseParser();
    const text = "event:x\ndata\ndatax: no\ndata:  two spaces\nid: 1\0\n\nid:9\nevent: y\ndat\ndata: z\n\n";
    expect(parser.push(text)).toEqual([
      { id: null, event: "x", data: "\n two spaces" },
      { id: "9", event: "y", data: "z" },
    ]);
  });

  it("keeps the last id for frames that carry none", () => {
    const parser = new SseParser();
    expect(parser.push("id: 3\ndata: x\n\ndata: y\n\n").map((f) => f.id)).toEqual(["3", "3"]);
  });
});

describe("decodeFrame", () => {
  it("decodes events and resets, and drops what it cannot read", () => {
    expect(decodeFrame({ id: "5", event: "reset", data: '{"reason":"too_old","last_event_id":1,"head_id":9}' })).toEqual({
      kind: "reset",
      reset: { reason: "too_old", last_event_id: 1, head_id: 9 },
    });
    const event = { id: 5, type: "state", sat_id: "s", at: "x", data: { from: "nominal", to: "safe", reason: "set_mode" } };
    expect(decodeFrame({ id: "5", event: "state", data: JSON.stringify(event) })).toEqual({ kind: "event", event });
    expect(decodeFrame({ id: "5", event: "state", data: "{not json" })).toBeNull();
    expect(decodeFrame({ id: "5", event: "state", data: '{"type":"state"}' })).toBeNull();
  });
});

function streamResponse(text: string): Response {
  return new Response(new Blob([text]).stream(), { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

describe("EventStream", () => {
  it("resumes with Last-Event-ID and the bearer token after the server closes the stream", async () => {
    const requests: Record<string, string>[] = [];
    let lastId: number | null = null;
    const states: ConnectionState[] = [];
    const received: StreamMessage[] = [];
    const bodies = [
      'id: 1\nevent: alarm\ndata: {"id":1,"type":"alarm","sat_id":"s","at":"t","data":{}}\n\n',
      'id: 2\nevent: alarm\ndata: {"id":2,"type":"alarm","sat_id":"s","at":"t","data":{}}\n\n',
    ];
    let stream: EventStream | null = null;
    const done = new Promise<void>((resolve) => {
      stream = new EventStream(
        {
          url: "/api/events",
          token: () => "sto_x",
          lastEventId: () => lastId,
          retryMs: 1,
          fetchFn: (async (_url: string, init?: RequestInit) => {
            requests.push({ ...(init?.headers as Record<string, string>) });
            const body = bodies.shift();
            if (body === undefined) {
              resolve();
              return new Response(null, { status: 401 });
            }
            return streamResponse(body);
          }) as typeof fetch,
        },
        {
          onMessages: (messages) => {
            received.push(...messages);
            for (const m of messages) if (m.kind === "event") lastId = m.event.id;
          },
          onState: (state) => states.push(state),
        },
      );
      stream.start();
    });
    await done;
    await new Promise((r) => setTimeout(r, 5));
    (stream as EventStream | null)?.stop();
    expect(received.map((m) => (m.kind === "event" ? m.event.id : -1))).toEqual([1, 2]);
    expect(requests.map((h) => h["Last-Event-ID"])).toEqual([undefined, "1", "2"]);
    expect(requests.every((h) => h.Authorization === "Bearer sto_x")).toBe(true);
    expect(states).toEqual(["connecting", "live", "reconnecting", "reconnecting", "live", "reconnecting", "reconnecting", "unauthorized"]);
  });

  it("opens one stream however often it is started (a restart, then the page's start)", async () => {
    let requests = 0;
    const stream = new EventStream(
      {
        url: "/api/events",
        token: () => null,
        lastEventId: () => null,
        fetchFn: (async () => {
          requests += 1;
          return new Response(new ReadableStream(), { status: 200 }); // open, silent
        }) as typeof fetch,
      },
      { onMessages: () => undefined, onState: () => undefined },
    );
    stream.restart();
    stream.start();
    stream.start();
    await new Promise((r) => setTimeout(r, 5));
    expect(requests).toBe(1);
    stream.stop();
    stream.start(); // stopped: starts again
    await new Promise((r) => setTimeout(r, 5));
    expect(requests).toBe(2);
    stream.stop();
  });
});
