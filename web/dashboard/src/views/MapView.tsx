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

interface Layers {
  stations: GroundStation[];
  track: Track | undefined;
  selected: string | null;
  alarmed?: Map<string, string>; // satellite id -> worst open alarm severity
}

function positioned(sat: LiveSat): sat is LiveSat & { lat_deg: number; lon_deg: number } {
  return typeof sat.lat_deg === "number" && typeof sat.lon_deg === "number";
}

function meanAltKm(sats: LiveSat[]): number {
  const alts = sats.map((s) => s.alt_km).filter((a): a is number => typeof a === "number");
  return alts.length ? alts.reduce((a, b) => a + b, 0) / alts.length : NOMINAL_ALT_KM;
}

/** Draws everything but the base; returns how many satellites it drew. */
function drawLive(ctx: CanvasRenderingContext2D, w: number, h: number, sats: LiveSat[], layers: Layers, nowMs: number): number {
  drawNight(ctx, w, h, nowMs);
  const altKm = meanAltKm(sats);
  const stationRadius = (st: GroundStation) => coverageRadiusDeg(altKm, st.min_el_deg);
  ctx.lineWidth = 1;
  for (const st of layers.stations) {
    if (!st.active) continue;
    drawCircle(ctx, w, h, st.lat_deg, st.lon_deg, stationRadius(st), "rgba(255, 202, 40, 0.45)", null);
  }
  for (const st of layers.stations) {
    const [x, y] = project(st.lon_deg, st.lat_deg, w, h);
    ctx.fillStyle = st.active ? "#ffca28" : "#8d6e63";
    ctx.fillRect(x - 3.5, y - 3.5, 7, 7);
  }
  const selected = layers.selected ? sats.find((s) => s.id === layers.selected) : undefined;
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
  let drawn = 0;
  const r = sats.length > 300 ? 2.5 : 4;
  for (const sat of sats) {
    if (!positioned(sat)) continue;
    const [x, y] = project(sat.lon_deg, sat.lat_deg, w, h);
    ctx.fillStyle = modeColor(sat.mode);
    ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
    drawn += 1;
  }
  for (const sat of sats) {
    const severity = layers.alarmed?.get(sat.id);
    if (!severity || !positioned(sat)) continue;
    const [x, y] = project(sat.lon_deg, sat.lat_deg, w, h);
    ctx.strokeStyle = severity === "critical" ? "#ef5350" : severity === "warning" ? "#ffa726" : "#90caf9";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, r + 4, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.lineWidth = 1;
  }
  if (selected && positioned(selected)) {
    const [x, y] = project(selected.lon_deg, selected.lat_deg, w, h);
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2;
    ctx.strokeRect(x - 7, y - 7, 14, 14);
    ctx.lineWidth = 1;
  }
  return drawn;
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

export function MapView({ selected }: { selected: string | null }) {
  const wrapRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const baseRef = useRef<HTMLCanvasElement | null>(null);
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
  const selectedSat = useDashboard((s) => (selected ? s.live.sats[selected] : undefined));
  const satCount = useDashboard((s) => Object.keys(s.live.sats).length);
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
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(baseRef.current, 0, 0);
    ctx.scale(dpr, dpr);
    const sats = Object.values(useDashboard.getState().live.sats);
    const drawn = drawLive(ctx, w, h, sats, layersRef.current, Date.now());
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
      if (state.live.sats !== previous.live.sats) schedule();
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
    for (const sat of Object.values(useDashboard.getState().live.sats)) {
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
        {selectedSat ? (
          <div className="card" data-testid="map-selected">
            <h3>
              <a href={href({ view: "satellite", satId: selectedSat.id })}>{selectedSat.id}</a> <span className="muted">{selectedSat.name}</span>
            </h3>
            <dl>
              <dt>mode</dt>
              <dd>
                <span className="mode" style={{ background: modeColor(selectedSat.mode) }}>{selectedSat.mode}</span>
              </dd>
              <dt>position</dt>
              <dd>
                {latitude(selectedSat.lat_deg)} {longitude(selectedSat.lon_deg)}
              </dd>
              <dt>altitude</dt>
              <dd>{km(selectedSat.alt_km)}</dd>
              <dt>energy</dt>
              <dd>{pct(selectedSat.energy_pct)}</dd>
              <dt>memory</dt>
              <dd>
                {megabytes(selectedSat.memory_used_mb)} / {megabytes(selectedSat.memory_capacity_mb)}
              </dd>
              <dt>sunlight</dt>
              <dd>{selectedSat.in_sunlight === null || selectedSat.in_sunlight === undefined ? "—" : selectedSat.in_sunlight ? "yes" : "eclipse"}</dd>
              <dt>orbit</dt>
              <dd>{track.data ? `period ${duration(track.data.period_s)}` : track.isError ? "no orbit" : "…"}</dd>
            </dl>
          </div>
        ) : selected ? (
          <p className="muted">{selected} is not in the constellation.</p>
        ) : null}
      </aside>
    </section>
  );
}
