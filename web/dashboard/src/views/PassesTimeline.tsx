import { useEffect, useMemo, useState } from "react";
import type { Pass } from "../api/types";
import { duration, utcDateTime, utcTime } from "../format";
import { PASS_HORIZON_H, useStations, useUpcomingPasses } from "../queries";
import { href } from "../route";

const ROW_PX = 34;
const LABEL_PX = 150;
const WIDTH_PX = 1200;
const HOUR_MS = 3_600_000;

/** Elevation -> colour: low passes are faint (short, little downlink), high ones strong. */
function passColor(maxElDeg: number): string {
  const alpha = 0.35 + 0.6 * Math.min(1, maxElDeg / 60);
  return `rgba(79, 195, 247, ${alpha.toFixed(2)})`;
}

export function PassesTimeline() {
  const passes = useUpcomingPasses();
  const stations = useStations();
  const [satFilter, setSatFilter] = useState("");
  const [nowMs, setNowMs] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 30_000);
    return () => clearInterval(timer);
  }, []);

  const startMs = passes.dataUpdatedAt || nowMs;
  const endMs = startMs + PASS_HORIZON_H * HOUR_MS;
  const x = (ms: number) => LABEL_PX + ((Math.min(Math.max(ms, startMs), endMs) - startMs) / (endMs - startMs)) * (WIDTH_PX - LABEL_PX);

  const byStation = useMemo(() => {
    const needle = satFilter.trim().toLowerCase();
    const map = new Map<string, Pass[]>();
    for (const p of passes.data ?? []) {
      if (needle && !p.satellite_id.toLowerCase().includes(needle)) continue;
      const list = map.get(p.station_id) ?? [];
      list.push(p);
      map.set(p.station_id, list);
    }
    return map;
  }, [passes.data, satFilter]);

  const rows = (stations.data ?? []).filter((s) => s.active);
  const heightPx = 30 + rows.length * ROW_PX;
  const total = [...byStation.values()].reduce((n, l) => n + l.length, 0);

  return (
    <section className="panel passes">
      <div className="toolbar">
        <h2>Passes</h2>
        <span className="muted">
          next {PASS_HORIZON_H} h from {utcDateTime(startMs)} · {total} passes
        </span>
        <input placeholder="satellite id" value={satFilter} onChange={(e) => setSatFilter(e.target.value)} aria-label="satellite filter" />
      </div>
      {passes.isLoading ? <p className="muted">computing passes on the orbital node…</p> : null}
      {passes.error ? <p className="error">{passes.error.message}</p> : null}
      <div className="timeline-scroll">
        <svg width={WIDTH_PX} height={heightPx} className="timeline" data-testid="passes-timeline" data-passes={total}>
          {Array.from({ length: PASS_HORIZON_H + 1 }, (_, h) => {
            const hx = x(startMs + h * HOUR_MS);
            return (
              <g key={h}>
                <line x1={hx} x2={hx} y1={20} y2={heightPx} className="hour" />
                <text x={hx + 2} y={14} className="axis">
                  {utcTime(startMs + h * HOUR_MS).slice(0, 5)}
                </text>
              </g>
            );
          })}
          {rows.map((station, i) => {
            const y = 24 + i * ROW_PX;
            return (
              <g key={station.id} data-station={station.id}>
                <text x={4} y={y + ROW_PX / 2 + 4} className="label">
                  {station.name}
                </text>
                <line x1={LABEL_PX} x2={WIDTH_PX} y1={y + ROW_PX - 2} y2={y + ROW_PX - 2} className="row-line" />
                {(byStation.get(station.id) ?? []).map((p) => {
                  const x1 = x(Date.parse(p.aos));
                  const x2 = Math.max(x1 + 2, x(Date.parse(p.los)));
                  return (
                    <a key={`${p.satellite_id}-${p.aos}`} href={href({ view: "satellite", satId: p.satellite_id })}>
                      <rect x={x1} y={y + 4} width={x2 - x1} height={ROW_PX - 10} rx={2} fill={passColor(p.max_el_deg)}>
                        <title>
                          {`${p.satellite_id} over ${station.name}\nAOS ${utcTime(Date.parse(p.aos))} LOS ${utcTime(Date.parse(p.los))} UTC (${duration((Date.parse(p.los) - Date.parse(p.aos)) / 1000)})\nmax elevation ${p.max_el_deg.toFixed(1)}°`}
                        </title>
                      </rect>
                    </a>
                  );
                })}
              </g>
            );
          })}
          <line x1={x(nowMs)} x2={x(nowMs)} y1={18} y2={heightPx} className="now" />
        </svg>
      </div>
    </section>
  );
}
