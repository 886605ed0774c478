// A server-sent events reader over fetch: unlike EventSource it can send the bearer token in a
// header (so it never lands in access logs), send Last-Event-ID when we (re)connect ourselves,
// and tell a 401 from a network failure.

import type { ClusterEvent, ResetData } from "./types";

export interface SseFrame {
  id: string | null;
  event: string;
  data: string;
}

/** Incremental text/event-stream parser (WHATWG rules for id, event, data; comments ignored). */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;

  /** Feed a decoded chunk; returns the frames it completed. Lines end in \n, \r\n or \r; a
   * chunk is scanned once with indexOf (10,000 events a second are 40,000 lines). */
  push(chunk: string): SseFrame[] {
    const text = this.buffer + chunk;
    const frames: SseFrame[] = [];
    let cr = text.indexOf("\r"); // the next \r at or after start (-1: none)
    let start = 0;
    for (;;) {
      let end = text.indexOf("\n", start);
      let next = end + 1;
      if (cr >= 0) {
        if (cr < start) cr = text.indexOf("\r", start);
        if (cr >= 0 && (end < 0 || cr < end)) {
          // A lone \r at the end may be the first half of \r\n: wait for more.
          if (cr === text.length - 1) break;
          end = cr;
          next = text.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
        }
      }
      if (end < 0) break;
      const frame = this.line(text.slice(start, end));
      if (frame) frames.push(frame);
      start = next;
    }
    this.buffer = start === 0 ? text : text.slice(start);
    return frames;
  }

  private line(line: string): SseFrame | null {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return null;
      }
      const data = this.data.length === 1 ? (this.data[0] ?? "") : this.data.join("\n");
      const frame = { id: this.id, event: this.event || "message", data };
      this.data = [];
      this.event = "";
      return frame;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    return null;
  }
}

export type StreamMessage = { kind: "event"; event: ClusterEvent } | { kind: "reset"; reset: ResetData };

/** A frame of /api/events as a typed message, or null for frames we do not know. */
export function decodeFrame(frame: SseFrame): StreamMessage | null {
  let payload: unknown;
  try {
    payload = JSON.parse(frame.data);
  } catch {
    return null;
  }
  if (typeof payload !== "object" || payload === null) return null;
  if (frame.event === "reset") return { kind: "reset", reset: payload as ResetData };
  const event = payload as ClusterEvent;
  if (typeof event.id !== "number" || typeof event.type !== "string") return null;
  return { kind: "event", event };
}

export type ConnectionState = "connecting" | "live" | "reconnecting" | "unauthorized";

export interface StreamHandlers {
  onMessages(messages: StreamMessage[]): void;
  onState(state: ConnectionState, detail: string): void;
  /** Called for any bytes from the server (events and heartbeats): the stream is alive. */
  onAlive?(): void;
}

export interface StreamOptions {
  url: string;
  token: () => string | null;
  lastEventId: () => number | null;
  fetchFn?: typeof fetch;
  retryMs?: number;
  maxRetryMs?: number;
}

/** Keeps one /api/events connection open, resuming with Last-Event-ID after every drop. */
export class EventStream {
  private readonly options: StreamOptions;
  private readonly handlers: StreamHandlers;
  private abort: AbortController | null = null;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;

  constructor(options: StreamOptions, handlers: StreamHandlers) {
    this.options = options;
    this.handlers = handlers;
  }

  /** Connect, unless a connection is open or a reconnect is scheduled: a second start (the
   * page's start after a token-change restart) must not open a second stream, whose every event
   * would be parsed twice. */
  start(): void {
    if (!this.stopped && (this.abort !== null || this.timer !== null)) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.abort = null;
  }

  /** Drop the connection and connect again at once (after a token change). */
  restart(): void {
    this.stop();
    this.failures = 0;
    this.start();
  }

  private schedule(): void {
    if (this.stopped) return;
    const base = this.options.retryMs ?? 1000;
    const delay = Math.min(base * 2 ** Math.min(this.failures, 5), this.options.maxRetryMs ?? 10_000);
    this.failures += 1;
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const abort = new AbortController();
    this.abort = abort;
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    const token = this.options.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    const last = this.options.lastEventId();
    if (last !== null) headers["Last-Event-ID"] = String(last);
    this.handlers.onState(this.failures === 0 && last === null ? "connecting" : "reconnecting", last === null ? "" : `resuming after #${last}`);
    const fetchFn = this.options.fetchFn ?? fetch;
    try {
      const response = await fetchFn(this.options.url, { headers, signal: abort.signal, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        this.handlers.onState("unauthorized", `HTTP ${response.status}`);
        this.stopped = true;
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      this.failures = 0;
      this.handlers.onState("live", "");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SseParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.handlers.onAlive?.();
        const messages: StreamMessage[] = [];
        for (const frame of parser.push(value)) {
          const message = decodeFrame(frame);
          if (message) messages.push(message);
        }
        if (messages.length) this.handlers.onMessages(messages);
      }
      throw new Error("the server closed the stream");
    } catch (error) {
      if (this.stopped || abort.signal.aborted) return;
      this.handlers.onState("reconnecting", error instanceof Error ? error.message : String(error));
      this.schedule();
    }
  }
}
