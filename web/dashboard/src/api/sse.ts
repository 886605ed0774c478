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
      const frame = this.line(text, start, end);
      if (frame) frames.push(frame);
      start = next;
    }
    this.buffer = start === 0 ? text : text.slice(start);
    return frames;
  }

  /** The line text[start:end]. The fields the server sends are read in place: one slice (the
   * value) per line instead of the line, then its field and value. */
  private line(text: string, start: number, end: number): SseFrame | null {
    if (start === end) {
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
    const first = text.charCodeAt(start);
    if (first === COLON) return null; // a comment
    if (first === LOWER_D && text.startsWith("data:", start)) this.field("data", text, start + 5, end);
    else if (first === LOWER_I && text.startsWith("id:", start)) this.field("id", text, start + 3, end);
    else if (first === LOWER_E && text.startsWith("event:", start)) this.field("event", text, start + 6, end);
    else {
      const colon = text.indexOf(":", start);
      if (colon < 0 || colon >= end) this.field(text.slice(start, end), text, end, end);
      else this.field(text.slice(start, colon), text, colon + 1, end);
    }
    return null;
  }

  /** A field whose value is text[from:end] (one leading space dropped). */
  private field(name: string, text: string, from: number, end: number): void {
    const value = text.charCodeAt(from) === SPACE && from < end ? text.slice(from + 1, end) : text.slice(from, end);
    if (name === "data") this.data.push(value);
    else if (name === "event") this.event = value;
    else if (name === "id" && !value.includes("\0")) this.id = value;
  }
}

const COLON = 58;
const SPACE = 32;
const LOWER_D = 100;
const LOWER_E = 101;
const LOWER_I = 105;

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
