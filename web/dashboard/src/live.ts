// Wires the event stream into the store: messages are buffered and applied in batches (a
// constellation of 1,000 satellites sends 1,000 events a second; one state update per batch
// keeps rendering cheap), REST snapshots are loaded at start, after a reset, and when events
// name satellites or nodes we do not know.

import type { ApiClient } from "./api/client";
import { applyMessages, applyNodes, applySnapshot } from "./api/reducer";
import type { StreamMessage } from "./api/sse";
import { EventStream } from "./api/sse";
import { useDashboard } from "./store";

export const FLUSH_MS = 250;
export const URGENT_FLUSH_MS = 50;
const SATS_RELOAD_MIN_MS = 5000;
const NODES_RELOAD_DELAY_MS = 500;

export class LiveController {
  private readonly api: ApiClient;
  private readonly stream: EventStream;
  private buffer: StreamMessage[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private nodesTimer: ReturnType<typeof setTimeout> | null = null;
  private lastSatsReloadMs = 0;
  private lastFlushMs = 0;
  private unsubscribe: (() => void) | null = null;

  constructor(api: ApiClient) {
    this.api = api;
    this.stream = new EventStream(
      {
        url: api.url("/api/events"),
        token: () => useDashboard.getState().token,
        lastEventId: () => useDashboard.getState().live.lastEventId,
      },
      {
        onMessages: (messages) => this.enqueue(messages),
        onState: (state, detail) => {
          useDashboard.getState().setConnection(state, detail);
          if (state === "live") void this.reloadAll();
        },
        onAlive: () => useDashboard.getState().touch(Date.now()),
      },
    );
  }

  start(): void {
    let seen = useDashboard.getState().live;
    this.unsubscribe = useDashboard.subscribe((state) => {
      const live = state.live;
      if (live === seen) return;
      if (live.resets !== seen.resets) void this.reloadAll();
      else {
        if (live.satsRevision !== seen.satsRevision) this.reloadSatsSoon();
        if (live.nodesRevision !== seen.nodesRevision) this.reloadNodesSoon();
      }
      seen = live;
    });
    this.stream.start();
  }

  stop(): void {
    this.stream.stop();
    this.unsubscribe?.();
    for (const timer of [this.flushTimer, this.nodesTimer]) if (timer) clearTimeout(timer);
  }

  /** Reconnect now (the token changed). */
  restart(): void {
    this.stream.restart();
  }

  private enqueue(messages: StreamMessage[]): void {
    let urgent = false;
    for (const message of messages) {
      this.buffer.push(message);
      urgent ||= message.kind === "reset" || message.event.type !== "telemetry";
    }
    // Telemetry waits for the next batch; anything else (a mode change, a node going down, a
    // command's outcome) is shown at once, at most every URGENT_FLUSH_MS.
    if (urgent) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      const waitMs = Math.max(0, this.lastFlushMs + URGENT_FLUSH_MS - Date.now());
      this.flushTimer = setTimeout(() => this.flush(), waitMs);
    }
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush(): void {
    this.flushTimer = null;
    this.lastFlushMs = Date.now();
    if (!this.buffer.length) return;
    const batch = this.buffer;
    this.buffer = [];
    useDashboard.getState().setLive((live) => applyMessages(live, batch));
  }

  async reloadAll(): Promise<void> {
    await Promise.all([this.reloadSats(), this.reloadNodes()]);
  }

  private async reloadSats(): Promise<void> {
    this.lastSatsReloadMs = Date.now();
    try {
      const sats = await this.api.satellites();
      useDashboard.getState().setLive((live) => applySnapshot(live, sats));
    } catch {
      // shown by the connection state and retried at the next trigger
    }
  }

  private reloadSatsSoon(): void {
    if (Date.now() - this.lastSatsReloadMs >= SATS_RELOAD_MIN_MS) void this.reloadSats();
  }

  private async reloadNodes(): Promise<void> {
    try {
      const nodes = await this.api.nodes();
      useDashboard.getState().setLive((live) => applyNodes(live, nodes));
    } catch {
      // as above
    }
  }

  private reloadNodesSoon(): void {
    this.nodesTimer ??= setTimeout(() => {
      this.nodesTimer = null;
      void this.reloadNodes();
    }, NODES_RELOAD_DELAY_MS);
  }
}
