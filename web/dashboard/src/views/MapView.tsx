import { useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import type { LiveSat } from "../api/reducer";
import type { GroundStation, Track } from "../api/types";
import { MODE_COLORS, modeColor } from "../colors";
import { duration, km, latitude, longitude, megabytes, pct } from "../format";
import { coverageRadiusDeg, project } from "../geo";
import type { LonLat } from "../geo";
import { href } from "../route";
import { api } from "../services";
import { useDashboard } from "../store";
import { worstBySatellite } from "../api/alarms";
import { useAlarmList } from "../alarmQueries";
import { drawBase, drawCircle, drawNight, drawPath } from "./worldmap";

/** Elevation mask of the coverage footprint drawn around the selected satellite (deg). */
export const FOOTPRINT_MIN_EL_DEG = 5;
const NOMINAL_ALT_KM = 550;
const HIT_RADIUS_PX = 10;
/** The stations' circles are drawn again when the mean altitude moved this much (their radius
 * changes by about a pixel per 10 km on a 1,400 px map). */
const ALT_REDRAW_KM = 10;

interface Layers {
  stations: GroundStation[];
  track: Track | undefined;
  selected: string | null;
  alarmed?: Map<string, string>; // satellite id -> worst open alarm severity
}

function positioned(sat: LiveSat): sat is LiveSat & { lat_deg: number; lon_deg: number } {
  return typeof sat.lat_deg === "number" && typeof sat.lon_deg === "number";
}

const COLOR_OF_MODE = new Map<string, number>(Object.keys(MODE_COLORS).map((mode, i) => [mode, i]));
const DOT_COLORS = [...Object.values(MODE_COLORS), modeColor("")]; // the last: a mode we do not know

/** Scratch buffers for the dots of one draw (x, y, colour index), grown as needed and reused. */
const scratch = { xy: new Float64Array(0), color: new Uint8Array(0) };

/** What the background layer was drawn for: it is drawn again when any of these changes. */
interface BackgroundKey {
  width: number;
  height: number;
  minute: number; // the terminator moves ~1 px a minute at this size
  altKm: number; // the stations' visibility circles follow the constellation's mean altitude
  stations: GroundStation[];
}

/** The layers that change slowly (land, night, ground stations) on one cached canvas: a draw at
 * 10,000 satellites then costs one copy of it plus the dots. Filling the night polygon and
 * stroking every station's circle on each batch was most of the map's main-thread time. */
class Background {
  private canvas: HTMLCanvasElement | null = null;
  private key: BackgroundKey | null = null;
  redraws = 0;

  /** The background for these layers (redrawn only when its key changed). */
  get(base: HTMLCanvasElement, dpr: number, w: number, h: number, nowMs: number, altKm: number, stations: GroundStation[]): HTMLCanvasElement {
    const key: BackgroundKey = { width: base.width, height: base.height, minute: Math.floor(nowMs / 60_000), altKm, stations };
    const old = this.key;
    // A difference, not rounding, for the altitude: a mean near a rounding edge would flip.
    const same = old && old.width === key.width && old.height === key.height && old.minute === key.minute && Math.abs(old.altKm - altKm) < ALT_REDRAW_KM && old.stations === key.stations;
    if (this.canvas && same) return this.canvas;
    const canvas = this.canvas ?? document.createElement("canvas");
    canvas.width = base.width;
    canvas.height = base.height;
    const ctx = canvas.getContext("2d");
    if (ctx) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.drawImage(base, 0, 0);
      ctx.scale(dpr, dpr);
      drawNight(ctx, w, h, nowMs);
      drawStations(ctx, w, h, stations, altKm);
    }
    this.canvas = canvas;
    this.key = key;
    this.redraws += 1;
    return canvas;
  }
}

function drawStations(ctx: CanvasRenderingContext2D, w: number, h: number, stations: GroundStation[], altKm: number): void {
  ctx.lineWidth = 1;
  for (const st of stations) {
    if (!st.active) continue;
    drawCircle(ctx, w, h, st.lat_deg, st.lon_deg, coverageRadiusDeg(altKm, st.min_el_deg), "rgba(255, 202, 40, 0.45)", null);
  }
  for (const st of stations) {
    const [x, y] = project(st.lon_deg, st.lat_deg, w, h);
    ctx.fillStyle = st.active ? "#ffca28" : "#8d6e63";
    ctx.fillRect(x - 3.5, y - 3.5, 7, 7);
  }
}

/** One pass over the satellites: their dots' positions and colour indexes into `scratch`, and
 * the mean altitude (km; NOMINAL_ALT_KM when none reports one). */
function projectSats(sats: Map<string, LiveSat>, w: number, h: number): { drawn: number; altKm: number } {
  if (scratch.color.length < sats.size) {
    scratch.xy = new Float64Array(2 * sats.size);
    scratch.color = new Uint8Array(sats.size);
  }
  const { xy, color } = scratch;
  let drawn = 0;
  let altSumKm = 0;
  let alts = 0;
  for (const sat of sats.values()) {
    if (typeof sat.alt_km === "number") {
      altSumKm += sat.alt_km;
      alts += 1;
    }
    if (!positioned(sat)) continue;
    xy[2 * drawn] = ((sat.lon_deg + 180) / 360) * w;
    xy[2 * drawn + 1] = ((90 - sat.lat_deg) / 180) * h;
    color[drawn] = COLOR_OF_MODE.get(sat.mode) ?? DOT_COLORS.length - 1;
    drawn += 1;
  }
  return { drawn, altKm: alts ? altSumKm / alts : NOMINAL_ALT_KM };
}

/** Draws the first `drawn` dots of `scratch` (projectSats), the selection and the alarms over
 * the background. The dots are drawn one colour at a time (setting fillStyle parses a colour:
 * once per colour, not once per dot). */
function drawLive(ctx: CanvasRenderingContext2D, w: number, h: number, sats: Map<string, LiveSat>, drawn: number, layers: Layers, nowMs: number): void {
  const { xy, color } = scratch;
  const selected = layers.selected ? sats.get(layers.selected) : undefined;
  if (layers.track && layers.track.satellite_id === layers.selected) {
    const nowIso = new Date(nowMs).toISOString();
    const past: LonLat[] = [];
    const next: LonLat[] = [];
    for (const p of layers.track.items) (p.time <= nowIso ? past : next).push([p.lon_deg, p.lat_deg]);
    if (selected && positioned(selected)) {
      past.push([selected.lon_deg, selected.lat_deg]);
      next.unshift([selected.lon_deg, selected.lat_deg]);
    }
    drawPath(ctx, w, h, past, "rgba(255,255,255,0.55)", [4, 4]);
    drawPath(ctx, w, h, next, "#ffffff", []);
  }
  if (selected && positioned(selected)) {
    const radius = coverageRadiusDeg(selected.alt_km ?? NOMINAL_ALT_KM, FOOTPRINT_MIN_EL_DEG);
    drawCircle(ctx, w, h, selected.lat_deg, selected.lon_deg, radius, "#4fc3f7", "rgba(79,195,247,0.12)");
  }
  const r = sats.size > 300 ? 2.5 : 4;
  for (let c = 0; c < DOT_COLORS.length; c += 1) {
    ctx.fillStyle = DOT_COLORS[c] ?? "#ffffff";
    for (let i = 0; i < drawn; i += 1) if (color[i] === c) ctx.fillRect((xy[2 * i] ?? 0) - r, (xy[2 * i + 1] ?? 0) - r, 2 * r, 2 * r);
  }
  ctx.lineWidth = 2;
  for (const [id, severity] of layers.alarmed ?? []) {
    const sat = sats.get(id);
    if (!sat || !positioned(sat)) continue;
    const [x, y] = project(sat.lon_deg, sat.lat_deg, w, h);
    ctx.strokeStyle = severity === "critical" ? "#ef5350" : severity === "warning" ? "#ffa726" : "#90caf9";
    ctx.beginPath();
    ctx.arc(x, y, r + 4, 0, 2 * Math.PI);
    ctx.stroke();
  }
  ctx.lineWidth = 1;
  if (selected && positioned(selected)) {
    const [x, y] = project(selected.lon_deg, selected.lat_deg, w, h);
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 7, y - 7, 14, 14);
    ctx.lineWidth = 1;
  }
}

/** Satellites in alarm (ringed on the map), each a link that selects it. */
function AlarmedList({ alarmed }: { alarmed: Map<string, string> }) {
  if (!alarmed.size) return null;
  return (
    <p className="map-alarms" data-testid="map-alarms" data-count={alarmed.size}>
      in alarm:{" "}
      {[...alarmed].map(([id, severity]) => (
        <a key={id} className={`alarm-mark severity-${severity}`} href={href({ view: "map", satId: id })}>
          {id}
        </a>
      ))}
    </p>
  );
}

/** The selected satellite's live values: re-rendered at each batch of telemetry (the satellites
 * are updated in place, so this subscribes to their version, not to the object). */
function SelectedCard({ selected, track, trackFailed }: { selected: string | null; track: Track | undefined; trackFailed: boolean }) {
  useDashboard((s) => (selected ? s.live.satsVersion : 0));
  const sat = useDashboard((s) => (selected ? s.live.sats.get(selected) : undefined));
  if (!selected) return null;
  if (!sat) return <p className="muted">{selected} is not in the constellation.</p>;
  return (
    <div className="card" data-testid="map-selected">
      <h3>
        <a href={href({ view: "satellite", satId: sat.id })}>{sat.id}</a> <span className="muted">{sat.name}</span>
      </h3>
      <dl>
        <dt>mode</dt>
        <dd>
          <span className="mode" style={{ background: modeColor(sat.mode) }}>{sat.mode}</span>
        </dd>
        <dt>position</dt>
        <dd>
          {latitude(sat.lat_deg)} {longitude(sat.lon_deg)}
        </dd>
        <dt>altitude</dt>
        <dd>{km(sat.alt_km)}</dd>
        <dt>energy</dt>
        <dd>{pct(sat.energy_pct)}</dd>
        <dt>memory</dt>
        <dd>
          {megabytes(sat.memory_used_mb)} / {megabytes(sat.memory_capacity_mb)}
        </dd>
        <dt>sunlight</dt>
        <dd>{sat.in_sunlight === null ? "—" : sat.in_sunlight ? "yes" : "eclipse"}</dd>
        <dt>orbit</dt>
        <dd>{track ? `period ${duration(track.period_s)}` : trackFailed ? "no orbit" : "…"}</dd>
      </dl>
    </div>
  );
}

export function MapView({ selected }: { selected: string | null }) {
  const wrapRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const baseRef = useRef<HTMLCanvasElement | null>(null);
  const backgroundRef = useRef(new Background());
  const layersRef = useRef<Layers>({ stations: [], track: undefined, selected });
  const frameRef = useRef<number | null>(null);
  const [widthPx, setWidthPx] = useState(0);

  const stations = useQuery({ queryKey: ["stations"], queryFn: () => api.stations(), staleTime: 300_000 });
  const track = useQuery({
    queryKey: ["track", selected],
    queryFn: () => api.track(selected ?? ""),
    enabled: selected !== null,
    refetchInterval: 120_000,
    retry: false,
  });
  const satCount = useDashboard((s) => s.live.sats.size);
  const alarms = useAlarmList();

  const draw = useCallback(() => {
    frameRef.current = null;
    const canvas = canvasRef.current;
    if (!canvas || canvas.width === 0) return;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.width / dpr;
    const h = canvas.height / dpr;
    if (!baseRef.current || baseRef.current.width !== canvas.width) {
      const base = document.createElement("canvas");
      base.width = canvas.width;
      base.height = canvas.height;
      const bctx = base.getContext("2d");
      if (bctx) {
        bctx.scale(dpr, dpr);
        drawBase(bctx, w, h);
      }
      baseRef.current = base;
    }
    const sats = useDashboard.getState().live.sats;
    const nowMs = Date.now();
    const { drawn, altKm } = projectSats(sats, w, h);
    const background = backgroundRef.current.get(baseRef.current, dpr, w, h, nowMs, altKm, layersRef.current.stations);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(background, 0, 0);
    ctx.scale(dpr, dpr);
    drawLive(ctx, w, h, sats, drawn, layersRef.current, nowMs);
    canvas.dataset.backgroundDraws = String(backgroundRef.current.redraws);
    canvas.dataset.drawnSats = String(drawn);
    canvas.dataset.draws = String(Number(canvas.dataset.draws ?? "0") + 1);
  }, []);

  const schedule = useCallback(() => {
    frameRef.current ??= requestAnimationFrame(draw);
  }, [draw]);

  useEffect(() => {
    layersRef.current = { stations: stations.data ?? [], track: track.data, selected, alarmed: worstBySatellite(alarms.data ?? []) };
    schedule();
  }, [stations.data, track.data, selected, schedule, alarms.data]);

  useEffect(() => {
    const unsubscribe = useDashboard.subscribe((state, previous) => {
      if (state.live.satsVersion !== previous.live.satsVersion) schedule();
    });
    const timer = setInterval(schedule, 60_000); // the terminator moves without events
    return () => {
      unsubscribe();
      clearInterval(timer);
      if (frameRef.current !== null) cancelAnimationFrame(frameRef.current);
      frameRef.current = null;
    };
  }, [schedule]);

  useEffect(() => {
    const wrap = wrapRef.current;
    if (!wrap) return;
    const observer = new ResizeObserver((entries) => {
      const width = Math.floor(entries[0]?.contentRect.width ?? 0);
      setWidthPx(width);
    });
    observer.observe(wrap);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas || widthPx === 0) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${widthPx}px`;
    canvas.style.height = `${widthPx / 2}px`;
    canvas.width = Math.round(widthPx * dpr);
    canvas.height = Math.round((widthPx / 2) * dpr);
    schedule();
  }, [widthPx, schedule]);

  function onClick(event: React.MouseEvent<HTMLCanvasElement>) {
    const rect = event.currentTarget.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    let best: { id: string; d2: number } | null = null;
    for (const sat of useDashboard.getState().live.sats.values()) {
      if (!positioned(sat)) continue;
      const [sx, sy] = project(sat.lon_deg, sat.lat_deg, rect.width, rect.height);
      const d2 = (sx - x) ** 2 + (sy - y) ** 2;
      if (d2 <= HIT_RADIUS_PX ** 2 && (!best || d2 < best.d2)) best = { id: sat.id, d2 };
    }
    window.location.hash = href({ view: "map", satId: best ? best.id : null });
  }

  return (
    <section className="map-view">
      <div className="map-wrap" ref={wrapRef}>
        <canvas ref={canvasRef} className="map" data-testid="map" onClick={onClick} aria-label={`world map with ${satCount} satellites`} />
      </div>
      <aside className="map-side">
        <div className="legend">
          {Object.entries(MODE_COLORS).map(([mode, color]) => (
            <span key={mode}>
              <i style={{ background: color }} /> {mode}
            </span>
          ))}
          <span>
            <i className="station" /> ground station (visibility circle)
          </span>
          <span>
            <i className="night" /> night
          </span>
        </div>
        <AlarmedList alarmed={worstBySatellite(alarms.data ?? [])} />
        <p className="muted">{satCount} satellites · click one for its ground track and footprint (≥ {FOOTPRINT_MIN_EL_DEG}° elevation)</p>
        <SelectedCard selected={selected} track={track.data} trackFailed={track.isError} />
      </aside>
    </section>
  );
}
