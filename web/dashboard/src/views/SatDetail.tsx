import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { ApiError } from "../api/client";
import type { Command, CommandKind, Mode, Pass } from "../api/types";
import { COMMAND_KINDS, MODES } from "../api/types";
import { modeColor } from "../colors";
import { SatManage } from "../components/SatManage";
import { TelemetryCharts } from "../components/TelemetryCharts";
import { duration, km, latitude, longitude, megabytes, outcome, pct, relative, utcDateTime, utcTime } from "../format";
import { useStations } from "../queries";
import { href } from "../route";
import { api } from "../services";
import { allows, useDashboard } from "../store";

/** The status a command shows: the ledger's, unless an event has told us more since. */
function liveStatus(command: Command, outcomes: Record<string, unknown>): string {
  const seen = outcomes[command.id];
  if (seen === undefined) return command.status;
  return seen === "done" ? "done" : `failed: ${outcome(seen)}`;
}

/** Why the next-passes table is empty (or that it is being computed): a satellite without a
 * usable TLE has no orbit, which is not the same as no pass. */
function passesNote(loading: boolean, error: unknown, tle: unknown, count: number): string | null {
  const reason = error instanceof ApiError ? error.details?.reason : undefined;
  if (!tle || reason === "no_tle") return "no orbit (no TLE)";
  if (reason === "bad_tle") return "no usable orbit (bad TLE)";
  if (loading) return "computing…";
  if (error) return error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
  return count ? null : "no pass in the next 24 h";
}

export function SatDetail({ satId }: { satId: string }) {
  // The satellite is updated in place: its values change with satsVersion, not its identity.
  useDashboard((s) => s.live.satsVersion);
  const sat = useDashboard((s) => s.live.sats.get(satId));
  const outcomes = useDashboard((s) => s.live.commandOutcomes);
  const role = useDashboard((s) => s.role);
  const queryClient = useQueryClient();
  const [nowMs, setNowMs] = useState(() => Date.now());
  const [mode, setMode] = useState<Mode | null>(null); // null: the satellite's current mode
  const [kind, setKind] = useState<CommandKind>("noop");
  const [commandMode, setCommandMode] = useState<Mode>("nominal");
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);

  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  const commands = useQuery({ queryKey: ["commands", satId], queryFn: () => api.commands(satId, 50), refetchInterval: 30_000 });
  const commandIds = useMemo(() => new Set((commands.data ?? []).map((c) => c.id)), [commands.data]);
  // A finished command we list: fetch the ledger again for its final row (attempts, result).
  const finishedListed = Object.keys(outcomes).filter((id) => commandIds.has(id)).length;
  useEffect(() => {
    if (finishedListed) void queryClient.invalidateQueries({ queryKey: ["commands", satId] });
  }, [finishedListed, satId, queryClient]);

  const passes = useQuery({
    queryKey: ["passes", satId],
    queryFn: () => {
      const from = new Date();
      return api.passes({ sats: [satId], from, to: new Date(from.getTime() + 24 * 3_600_000) });
    },
    staleTime: 300_000,
    refetchInterval: 300_000,
  });
  const stations = useStations();

  const report = (text: string, error = false) => setMessage({ text, error });
  const failure = (cause: unknown) => report(cause instanceof ApiError ? `${cause.code}: ${cause.message}` : String(cause), true);

  const setModeMutation = useMutation({
    mutationFn: (m: Mode) => api.setMode(satId, m),
    onSuccess: (s) => {
      setMode(null);
      report(`mode is now ${s.mode}`);
    },
    onError: failure,
  });
  const commandMutation = useMutation({
    mutationFn: () => api.sendCommand(satId, kind, kind === "set_mode" ? { mode: commandMode } : {}, crypto.randomUUID()),
    onSuccess: (accepted) => {
      report(`command ${accepted.kind} accepted: ${accepted.id}`);
      void queryClient.invalidateQueries({ queryKey: ["commands", satId] });
    },
    onError: failure,
  });

  if (!sat) {
    return (
      <section className="panel">
        <h2>{satId}</h2>
        <p className="muted">Not in the constellation (or not loaded yet).</p>
      </section>
    );
  }
  const canOperate = allows(role, "operator");
  const nextByStation = new Map<string, Pass>();
  for (const p of passes.data ?? []) if (Date.parse(p.los) >= nowMs && !nextByStation.has(p.station_id)) nextByStation.set(p.station_id, p);
  const stationName = new Map((stations.data ?? []).map((s) => [s.id, s.name]));

  return (
    <section className="detail" data-testid="sat-detail">
      <div className="panel">
        <div className="toolbar">
          <h2>
            {sat.id} <span className="muted">{sat.name}</span>
          </h2>
          <span className="mode" data-testid="detail-mode" style={{ background: modeColor(sat.mode) }}>
            {sat.mode}
          </span>
          <a href={href({ view: "map", satId: sat.id })}>on the map</a>
        </div>
        <dl className="facts">
          <dt>energy</dt>
          <dd>{pct(sat.energy_pct)}</dd>
          <dt>memory</dt>
          <dd>
            {megabytes(sat.memory_used_mb)} / {megabytes(sat.memory_capacity_mb)}
          </dd>
          <dt>position</dt>
          <dd>
            {latitude(sat.lat_deg)} {longitude(sat.lon_deg)} · {km(sat.alt_km)}
          </dd>
          <dt>sunlight</dt>
          <dd>{sat.in_sunlight === true ? "yes" : sat.in_sunlight === false ? "eclipse" : "—"}</dd>
          <dt>node</dt>
          <dd>{sat.node ?? "—"}</dd>
          <dt>updated</dt>
          <dd>{utcTime(sat.updated_ms)} UTC</dd>
        </dl>
      </div>
      <TelemetryCharts satId={sat.id} />
      <div className="columns">
        <div className="panel">
          <h3>Control</h3>
          {canOperate ? (
            <>
              <form
                className="row"
                onSubmit={(e) => {
                  e.preventDefault();
                  setModeMutation.mutate(mode ?? sat.mode);
                }}
              >
                <label>
                  mode{" "}
                  <select value={mode ?? sat.mode} onChange={(e) => setMode(e.target.value as Mode)} aria-label="new mode">
                    {MODES.map((m) => (
                      <option key={m}>{m}</option>
                    ))}
                  </select>
                </label>
                <button type="submit" disabled={setModeMutation.isPending}>
                  Set mode
                </button>
              </form>
              <form
                className="row"
                onSubmit={(e) => {
                  e.preventDefault();
                  commandMutation.mutate();
                }}
              >
                <label>
                  command{" "}
                  <select value={kind} onChange={(e) => setKind(e.target.value as CommandKind)} aria-label="command kind">
                    {COMMAND_KINDS.filter((k) => k !== "set_tle").map((k) => (
                      <option key={k}>{k}</option>
                    ))}
                  </select>
                </label>
                {kind === "set_mode" ? (
                  <select value={commandMode} onChange={(e) => setCommandMode(e.target.value as Mode)} aria-label="command mode">
                    {MODES.map((m) => (
                      <option key={m}>{m}</option>
                    ))}
                  </select>
                ) : null}
                <button type="submit" disabled={commandMutation.isPending}>
                  Send
                </button>
              </form>
            </>
          ) : (
            <p className="muted">Mode changes and commands need the operator role: sign in with an operator or admin token.</p>
          )}
          {message ? (
            <p className={message.error ? "error" : "ok"} role="status" data-testid="control-message">
              {message.text}
            </p>
          ) : null}
        </div>
        <div className="panel">
          <h3>Next passes</h3>
          <table className="grid compact">
            <thead>
              <tr>
                <th>station</th>
                <th>AOS (UTC)</th>
                <th>duration</th>
                <th>max el</th>
              </tr>
            </thead>
            <tbody>
              {[...nextByStation.values()].map((p) => (
                <tr key={p.station_id}>
                  <td>{stationName.get(p.station_id) ?? p.station_id}</td>
                  <td title={relative(Date.parse(p.aos), nowMs)}>{utcDateTime(Date.parse(p.aos))}</td>
                  <td>{duration((Date.parse(p.los) - Date.parse(p.aos)) / 1000)}</td>
                  <td>{p.max_el_deg.toFixed(1)}°</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted" data-testid="passes-note">
            {passesNote(passes.isLoading, passes.error, sat.tle ?? null, nextByStation.size)}
          </p>
        </div>
      </div>
      <SatManage sat={sat} canOperate={canOperate} />
      <div className="panel">
        <h3>
          Commands <a href={href({ view: "commands", satId: sat.id })}>history, filters and export</a>
        </h3>
        <table className="grid compact" data-testid="commands">
          <thead>
            <tr>
              <th>submitted (UTC)</th>
              <th>kind</th>
              <th>args</th>
              <th>status</th>
              <th>attempts</th>
              <th>id</th>
            </tr>
          </thead>
          <tbody>
            {(commands.data ?? []).map((c) => {
              const status = liveStatus(c, outcomes);
              return (
                <tr key={c.id} data-command={c.id}>
                  <td>{utcDateTime(Date.parse(c.created_at))}</td>
                  <td>{c.kind}</td>
                  <td>{Object.keys(c.args).length ? JSON.stringify(c.args) : ""}</td>
                  <td className={`status status-${status.split(":")[0]}`} data-testid="command-status">
                    {status}
                  </td>
                  <td className="num">{c.attempts}</td>
                  <td className="muted mono">{c.id}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {commands.error ? <p className="error">{String(commands.error.message)}</p> : null}
      </div>
    </section>
  );
}
