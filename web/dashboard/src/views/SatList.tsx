import { memo, useEffect, useMemo, useRef, useState } from "react";
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
/** Orders and filters on live values (mode, energy, memory) follow them once a second: the
 * rows show every batch, but 10,000 rows are not sorted again four times a second. */
const LIVE_KEYS: ReadonlySet<SortKey> = new Set(["mode", "energy_pct", "memory_used_mb"]);

function passText({ pass, aosMs, losMs }: TimedPass, nowMs: number): string {
  if (aosMs <= nowMs) return `over ${pass.station_id} now (LOS ${relative(losMs, nowMs)})`;
  return `${pass.station_id} ${relative(aosMs, nowMs)}`;
}
const OVERSCAN_ROWS = 8;

interface RowProps {
  sat: LiveSat;
  /** The satellite's values are updated in place: these props say when to render it again. */
  updatedMs: number;
  mode: string;
  alarm: string | undefined;
  passNote: string;
}

const Row = memo(function Row({ sat, alarm, passNote }: RowProps) {
  return (
    <tr data-sat={sat.id} data-alarm-severity={alarm} style={{ height: ROW_PX }}>
      <td>
        <a href={href({ view: "satellite", satId: sat.id })}>{sat.id}</a>
        {alarm ? (
          <a className={`alarm-mark severity-${alarm}`} href={href({ view: "alarms" })} title={`${alarm} alarm`}>
            ⚠
          </a>
        ) : null}
      </td>
      <td>{sat.name}</td>
      <td>
        <span className="mode" data-testid="mode" style={{ background: modeColor(sat.mode) }}>
          {sat.mode}
        </span>
      </td>
      <td className="num">{pct(sat.energy_pct)}</td>
      <td className="num">
        {megabytes(sat.memory_used_mb)} / {megabytes(sat.memory_capacity_mb)}
      </td>
      <td>{sat.node ?? "—"}</td>
      <td>{passNote}</td>
    </tr>
  );
});

/** Only the rows in view are rendered (and only those whose satellite changed): 10,000 live rows
 * re-rendered four times a second would cost more than the rest of the page. */
export function SatList() {
  const sats = useDashboard((s) => s.live.sats);
  const membership = useDashboard((s) => s.live.satsMembership);
  useDashboard((s) => s.live.satsVersion); // the visible rows' values
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
  const liveClockMs = LIVE_KEYS.has(sort.key) || mode ? nowMs : 0;

  const rows = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    const list = [...sats.values()].filter(
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
    // membership and liveClockMs are not read: they say when to filter and sort again.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sats, membership, filter, mode, sort, passIndex, sortClockMs, liveClockMs]);

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
          {rows.length} of {sats.size}
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
              const passNote = pass ? passText(pass, nowMs) : passes.isLoading ? "…" : "—";
              return <Row key={s.id} sat={s} updatedMs={s.updated_ms} mode={s.mode} alarm={alarmed.get(s.id)} passNote={passNote} />;
            })}
            {last < rows.length ? <tr style={{ height: (rows.length - last) * ROW_PX }} aria-hidden /> : null}
          </tbody>
        </table>
      </div>
    </section>
  );
}
