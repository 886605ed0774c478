// The typed HTTP client: one place that knows the gateway's routes, auth and error shape.

import type {
  Alarm,
  ClusterNode,
  Command,
  CommandAccepted,
  CommandKind,
  CommandPage,
  ErrorBody,
  GroundStation,
  ImportResult,
  Items,
  Mode,
  Page,
  Pass,
  Plan,
  Satellite,
  Session,
  StationEdited,
  StationFields,
  Task,
  TelemetryHistory,
  TleChanged,
  TleEntry,
  Track,
} from "./types";

export interface CommandFilter {
  satId?: string;
  kinds?: string[];
  statuses?: string[];
  submittedBy?: string;
  from?: Date;
  to?: Date;
}

export interface Download {
  blob: Blob;
  filename: string;
}

function commandsPath(satId: string | undefined): string {
  return satId ? `/api/satellites/${encodeURIComponent(satId)}/commands` : "/api/commands";
}

function commandQuery(filter: CommandFilter): Query {
  return {
    kind: filter.kinds?.length ? filter.kinds : undefined,
    status: filter.statuses?.length ? filter.statuses : undefined,
    submitted_by: filter.submittedBy || undefined,
    from: filter.from?.toISOString(),
    to: filter.to?.toISOString(),
  };
}

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** An HTTP error from the gateway, with its JSON error code when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | null;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

type Query = Record<string, string | number | string[] | undefined>;

function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    params.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const error = (body as { error: unknown }).error;
  return typeof error === "object" && error !== null && "code" in error && "message" in error;
}

export class ApiClient {
  private readonly baseUrl: string;
  private readonly fetchFn: Fetch;
  private token: string | null;

  constructor(baseUrl = "", token: string | null = null, fetchFn: Fetch = (input, init) => fetch(input, init)) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.token = token;
    this.fetchFn = fetchFn;
  }

  setToken(token: string | null): void {
    this.token = token;
  }

  getToken(): string | null {
    return this.token;
  }

  url(path: string, query?: Query): string {
    return `${this.baseUrl}${path}${queryString(query)}`;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { Accept: "application/json", ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  async request<T>(method: string, path: string, options: { query?: Query; body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
    const init: RequestInit = { method, headers: this.headers(options.headers) };
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    let response: Response;
    try {
      response = await this.fetchFn(this.url(path, options.query), init);
    } catch (cause) {
      throw new ApiError(0, "network", `cannot reach the gateway: ${String(cause)}`);
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (!response.ok) {
      if (isErrorBody(body)) {
        throw new ApiError(response.status, body.error.code, body.error.message, body.error.details ?? null);
      }
      throw new ApiError(response.status, "http_error", `HTTP ${response.status} ${response.statusText}`.trim());
    }
    if (body === null) throw new ApiError(response.status, "bad_response", "the gateway sent no JSON body");
    return body as T;
  }

  session(): Promise<Session> {
    return this.request("GET", "/api/session");
  }

  /** Every satellite, by id. The first page says how many there are; the other pages are then
   * asked for at once (one after the other, 10,000 satellites took seconds of round trips). */
  async satellites(): Promise<Satellite[]> {
    const limit = 1000;
    const page = (offset: number) => this.request<Page<Satellite>>("GET", "/api/satellites", { query: { limit, offset } });
    const first = await page(0);
    const offsets: number[] = [];
    if (first.items.length === limit) for (let offset = limit; offset < first.total; offset += limit) offsets.push(offset);
    const items = first.items;
    for (const rest of await Promise.all(offsets.map(page))) items.push(...rest.items);
    return items;
  }

  satellite(id: string): Promise<Satellite> {
    return this.request("GET", `/api/satellites/${encodeURIComponent(id)}`);
  }

  setMode(id: string, mode: Mode): Promise<Satellite> {
    return this.request("PATCH", `/api/satellites/${encodeURIComponent(id)}`, { body: { mode } });
  }

  sendCommand(id: string, kind: CommandKind, args: Record<string, unknown> = {}, idempotencyKey?: string): Promise<CommandAccepted> {
    const headers: Record<string, string> = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    return this.request("POST", `/api/satellites/${encodeURIComponent(id)}/commands`, { body: { kind, args }, headers });
  }

  async commands(id: string, limit = 50): Promise<Command[]> {
    const body = await this.request<Items<Command>>("GET", `/api/satellites/${encodeURIComponent(id)}/commands`, { query: { limit } });
    return body.items;
  }

  telemetry(id: string, from: Date, to: Date, stepS?: number): Promise<TelemetryHistory> {
    return this.request("GET", `/api/satellites/${encodeURIComponent(id)}/telemetry`, {
      query: { from: from.toISOString(), to: to.toISOString(), step: stepS },
    });
  }

  /** A page of the command history (one satellite's, or the fleet's), newest first. */
  commandHistory(filter: CommandFilter, cursor?: string, limit = 50): Promise<CommandPage> {
    return this.request("GET", commandsPath(filter.satId), { query: { ...commandQuery(filter), cursor, limit } });
  }

  /** Every command matching ``filter`` as a CSV file (the gateway streams it). */
  exportCommands(filter: CommandFilter): Promise<Download> {
    return this.download(commandsPath(filter.satId), commandQuery(filter), "commands.csv");
  }

  /** The raw samples of ``id`` in [from, to) as a CSV file (the gateway streams it). */
  exportTelemetry(id: string, from: Date, to: Date): Promise<Download> {
    const query = { from: from.toISOString(), to: to.toISOString(), format: "csv" };
    return this.download(`/api/satellites/${encodeURIComponent(id)}/telemetry`, query, `${id}_telemetry.csv`);
  }

  /** A file from the gateway: its body and the name Content-Disposition gives it. */
  async download(path: string, query: Query, fallbackName: string): Promise<Download> {
    let response: Response;
    try {
      response = await this.fetchFn(this.url(path, query), { headers: this.headers({ Accept: "text/csv" }) });
    } catch (cause) {
      throw new ApiError(0, "network", `cannot reach the gateway: ${String(cause)}`);
    }
    if (!response.ok) {
      const body: unknown = await response.json().catch(() => null);
      if (isErrorBody(body)) throw new ApiError(response.status, body.error.code, body.error.message, body.error.details ?? null);
      throw new ApiError(response.status, "http_error", `HTTP ${response.status} ${response.statusText}`.trim());
    }
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1] ?? fallbackName;
    return { blob: await response.blob(), filename: name };
  }

  track(id: string): Promise<Track> {
    return this.request("GET", `/api/satellites/${encodeURIComponent(id)}/track`);
  }

  async nodes(): Promise<ClusterNode[]> {
    return (await this.request<Items<ClusterNode>>("GET", "/api/nodes")).items;
  }

  async alarms(): Promise<Alarm[]> {
    return (await this.request<Items<Alarm>>("GET", "/api/alarms")).items;
  }

  clearAlarm(id: number): Promise<Alarm> {
    return this.request("POST", `/api/alarms/${id}/clear`);
  }

  async stations(): Promise<GroundStation[]> {
    return (await this.request<Items<GroundStation>>("GET", "/api/ground-stations")).items;
  }

  createSatellite(body: Record<string, unknown>): Promise<Satellite> {
    return this.request("POST", "/api/satellites", { body });
  }

  /** Up to 2,000 creation bodies in one request (a catalog import); each answered on its own. */
  importSatellites(satellites: Record<string, unknown>[]): Promise<ImportResult> {
    return this.request("POST", "/api/satellites/import", { body: { satellites } });
  }

  deleteSatellite(id: string): Promise<void> {
    return this.request("DELETE", `/api/satellites/${encodeURIComponent(id)}`);
  }

  /** New elements for a satellite: ``{elements: text}`` (TLE or OMM), ``{tle}`` or ``{omm}``. */
  setTle(id: string, body: Record<string, unknown>): Promise<TleChanged> {
    return this.request("PUT", `/api/satellites/${encodeURIComponent(id)}/tle`, { body });
  }

  async tleHistory(id: string): Promise<TleEntry[]> {
    return (await this.request<Items<TleEntry>>("GET", `/api/satellites/${encodeURIComponent(id)}/tle-history`)).items;
  }

  createStation(body: StationFields & { id: string }): Promise<GroundStation> {
    return this.request("POST", "/api/ground-stations", { body });
  }

  /** Replaces every field but the id (left out: the defaults). */
  putStation(id: string, body: StationFields): Promise<StationEdited> {
    return this.request("PUT", `/api/ground-stations/${encodeURIComponent(id)}`, { body });
  }

  /** Take a station down (false) or bring it back (true). */
  setStationActive(id: string, active: boolean): Promise<{ id: string; active: boolean; changed: boolean }> {
    return this.request("PATCH", `/api/ground-stations/${encodeURIComponent(id)}`, { body: { active } });
  }

  deleteStation(id: string): Promise<void> {
    return this.request("DELETE", `/api/ground-stations/${encodeURIComponent(id)}`);
  }

  async passes(options: { from?: Date; to?: Date; sats?: string[]; stations?: string[] } = {}): Promise<Pass[]> {
    const body = await this.request<Items<Pass>>("GET", "/api/passes", {
      query: { from: options.from?.toISOString(), to: options.to?.toISOString(), sat: options.sats, station: options.stations },
    });
    return body.items;
  }

  async tasks(limit = 500): Promise<Task[]> {
    return (await this.request<Items<Task>>("GET", "/api/tasks", { query: { limit } })).items;
  }

  createTask(body: Record<string, unknown>): Promise<Task> {
    return this.request("POST", "/api/tasks", { body });
  }

  cancelTask(id: number): Promise<Task> {
    return this.request("POST", `/api/tasks/${id}/cancel`);
  }

  plan(): Promise<Plan> {
    return this.request("GET", "/api/plan");
  }

  replan(): Promise<{ request_id: number }> {
    return this.request("POST", "/api/plan/replan", { body: {} });
  }
}
