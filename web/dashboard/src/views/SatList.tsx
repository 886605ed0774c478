import { useEffect, useMemo, useRef, useState } from "react";
import type { LiveSat } from "../api/reducer";
import { MODES } from "../api/types";
import { modeColor } from "../colors";
import { megabytes, pct, relative } from "../format";
import { indexPasses, nextPass } from "../passes";
import type { TimedPass } from "../passes";
import { useUpcomingPasses } from "../queries";
import { worstBySatellite } from "../api/alarms";
import { useAlarmList } from "../alarmQueries";
import { href } from "../route";
import { useDashboard } from "../store";

type SortKey = "id" | "name" | "mode" | "energy_pct" | "memory_used_mb" | "node" | "next_pass";

const COLUMNS: { key: SortKey; label: string }[] = [
  { key: "id", label: "id" },
  { key: "name", label: "name" },
  { key: "mode", label: "mode" },
  { key: "energy_pct", label: "energy" },
  { key: "memory_used_mb", label: "memory" },
  { key: "node", label: "node" },
  { key: "next_pass", label: "next pass" },
];

const ROW_PX = 30;

function passText({ pass, aosMs, losMs }: TimedPass, nowMs: number): string {
  if (aosMs <= nowMs) return `over ${pass.station_id} now (LOS ${relative(losMs, nowMs)})`;
  return `${pass.station_id} ${relative(aosMs, nowMs)}`;
}
const OVERSCAN_ROWS = 8;

/** Only the rows in view are rendered: 1,000 live rows re-rendered four times a second would
 * cost more than the rest of the page. */
export function SatList() {
  const sats = useDashboard((s) => s.live.sats);
  const passes = useUpcomingPasses();
  const alarmed = worstBySatellite(useAlarmList().data ?? []);
  const [filter, setFilter] = useState("");
  const [mode, setMode] = useState("");
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: "id", desc: false });
  const [scrollTop, setScrollTop] = useState(0);
  const [viewportPx, setViewportPx] = useState(600);
  const [nowMs, setNowMs] = useState(() => Date.now());
  const scrollRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  useEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setViewportPx(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const passIndex = useMemo(() => indexPasses(passes.data), [passes.data]);
  // Sorting by next pass follows the clock; other orders do not need it.
  const sortClockMs = sort.key === "next_pass" ? Math.floor(nowMs / 10_000) * 10_000 : 0;

  const rows = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    const list = Object.values(sats).filter(
      (s) =>
        (!mode || s.mode === mode) &&
        (!needle || s.id.toLowerCase().includes(needle) || s.name.toLowerCase().includes(needle) || (s.node ?? "").toLowerCase().includes(needle)),
    );
    const value = (s: LiveSat): string | number => {
      if (sort.key === "next_pass") return nextPass(passIndex, s.id, sortClockMs)?.aosMs ?? Number.MAX_VALUE;
      if (sort.key === "node") return s.node ?? "";
      return s[sort.key];
    };
    list.sort((a, b) => {
      const va = value(a);
      const vb = value(b);
      const order = va < vb ? -1 : va > vb ? 1 : a.id < b.id ? -1 : 1;
      return sort.desc ? -order : order;
    });
    return list;
  }, [sats, filter, mode, sort, passIndex, sortClockMs]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_PX) - OVERSCAN_ROWS);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewportPx) / ROW_PX) + OVERSCAN_ROWS);
  const visible = rows.slice(first, last);

  return (
    <section className="panel sat-list">
      <div className="toolbar">
        <h2>Satellites</h2>
        <input placeholder="filter by id, name or node" value={filter} onChange={(e) => setFilter(e.target.value)} aria-label="filter" />
        <select value={mode} onChange={(e) => setMode(e.target.value)} aria-label="mode filter">
          <option value="">every mode</option>
          {MODES.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
        <span className="muted" data-testid="sat-count">
          {rows.length} of {Object.keys(sats).length}
        </span>
        <a href={href({ view: "newsat" })} data-testid="new-satellite">
          + new satellite
        </a>
      </div>
      <div className="table-scroll" ref={scrollRef} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}>
        <table className="grid">
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th key={c.key} onClick={() => setSort((s) => ({ key: c.key, desc: s.key === c.key ? !s.desc : false }))} aria-sort={sort.key === c.key ? (sort.desc ? "descending" : "ascending") : "none"}>
                  {c.label}
                  {sort.key === c.key ? (sort.desc ? " ▼" : " ▲") : ""}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {first > 0 ? <tr style={{ height: first * ROW_PX }} aria-hidden /> : null}
            {visible.map((s) => {
              const pass = nextPass(passIndex, s.id, nowMs);
              return (
                <tr key={s.id} data-sat={s.id} data-alarm-severity={alarmed.get(s.id)} style={{ height: ROW_PX }}>
                  <td>
                    <a href={href({ view: "satellite", satId: s.id })}>{s.id}</a>
                    {alarmed.has(s.id) ? (
                      <a className={`alarm-mark severity-${alarmed.get(s.id)}`} href={href({ view: "alarms" })} title={`${alarmed.get(s.id)} alarm`}>
                        ⚠
                      </a>
                    ) : null}
                  </td>
                  <td>{s.name}</td>
                  <td>
                    <span className="mode" data-testid="mode" style={{ background: modeColor(s.mode) }}>
                      {s.mode}
                    </span>
                  </td>
                  <td className="num">{pct(s.energy_pct)}</td>
                  <td className="num">
                    {megabytes(s.memory_used_mb)} / {megabytes(s.memory_capacity_mb)}
                  </td>
                  <td>{s.node ?? "—"}</td>
                  <td>{pass ? passText(pass, nowMs) : passes.isLoading ? "…" : "—"}</td>
                </tr>
              );
            })}
            {last < rows.length ? <tr style={{ height: (rows.length - last) * ROW_PX }} aria-hidden /> : null}
          </tbody>
        </table>
      </div>
    </section>
  );
}
