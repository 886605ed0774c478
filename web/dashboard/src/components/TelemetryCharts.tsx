import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { ApiError } from "../api/client";
import { watch } from "../api/reducer";
import { save } from "../download";
import { bandOf, rangeCaption, windowOf, withTail } from "../series";
import type { Param, RangeChoice } from "../series";
import { api } from "../services";
import { useDashboard } from "../store";
import { Chart } from "./Chart";
import { RangePicker } from "./RangePicker";

const CHARTS: { param: Param; title: string; unit: string; color: string; testId: string; yRange?: [number, number] }[] = [
  { param: "energy_pct", title: "energy", unit: "%", color: "#66bb6a", testId: "chart-energy", yRange: [0, 100] },
  { param: "memory_used_mb", title: "memory", unit: "MB", color: "#42a5f5", testId: "chart-memory" },
  { param: "alt_km", title: "altitude", unit: "km", color: "#ffca28", testId: "chart-altitude" },
];

const EMPTY = { t_s: [], avg: [], min: [], max: [] };

/** How often a live range is fetched again (the live tail fills in between): once a bucket. */
function refreshMs(stepS: number | null): number {
  return Math.max(15_000, (stepS ?? 1) * 1000);
}

/** A satellite's charts over a chosen range: buckets from the server (min-max band and mean),
 * continued by the live tail from the event stream while the range ends now; CSV export of the
 * range's raw samples. */
export function TelemetryCharts({ satId }: { satId: string }) {
  const [choice, setChoice] = useState<RangeChoice>({ kind: "last", seconds: 3600 });
  const [nowMs, setNowMs] = useState(() => Date.now());
  const tail = useDashboard((s) => (s.live.watched === satId ? s.live.tail : null));
  const setLive = useDashboard((s) => s.setLive);
  const [exported, setExported] = useState<{ text: string; error: boolean } | null>(null);

  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  // The live tail: telemetry events of this satellite from now on (the reducer keeps them).
  useEffect(() => {
    setLive((live) => watch(live, satId, []));
    return () => setLive((live) => (live.watched === satId ? watch(live, null) : live));
  }, [satId, setLive]);

  const history = useQuery({
    queryKey: ["telemetry", satId, choice],
    queryFn: async () => {
      const window = windowOf(choice, Date.now());
      const body = await api.telemetry(satId, new Date(window.fromMs), new Date(window.toMs), window.stepS ?? undefined);
      return { window, body };
    },
    staleTime: choice.kind === "last" ? 0 : Infinity,
    refetchInterval: (query) => (choice.kind === "last" ? refreshMs(query.state.data?.window.stepS ?? null) : false),
  });

  const live = choice.kind === "last";
  const shownFromMs = live ? nowMs - choice.seconds * 1000 : choice.fromMs;
  const shownToMs = live ? nowMs : choice.toMs;
  const bands = useMemo(() => {
    const data = history.data;
    return CHARTS.map(({ param }) => {
      const band = bandOf(data?.body.items ?? [], param, data?.window.stepS ?? null);
      if (!live || !data) return band;
      return withTail(band, tail ?? [], param, Date.parse(data.body.end), shownFromMs);
    });
  }, [history.data, tail, live, shownFromMs]);
  const xRange: [number, number] = [shownFromMs / 1000, shownToMs / 1000];

  const exportMutation = useMutation({
    mutationFn: () => api.exportTelemetry(satId, new Date(shownFromMs), new Date(shownToMs)),
    onSuccess: (download) => {
      save(download);
      setExported({ text: `saved ${download.filename} (${Math.ceil(download.blob.size / 1024)} KiB)`, error: false });
    },
    onError: (cause) => setExported({ text: cause instanceof ApiError ? `${cause.code}: ${cause.message}` : String(cause), error: true }),
  });

  const step = history.data?.window.stepS ?? null;
  return (
    <div className="panel telemetry">
      <div className="toolbar">
        <RangePicker value={choice} onChange={setChoice} nowMs={nowMs} />
        <div className="spacer" />
        <button type="button" onClick={() => exportMutation.mutate()} disabled={exportMutation.isPending} data-testid="export-telemetry">
          {exportMutation.isPending ? "Exporting…" : "Export CSV"}
        </button>
      </div>
      <p className="muted" data-testid="telemetry-window" data-step={step ?? "raw"} data-live={live}>
        {rangeCaption(shownFromMs, shownToMs)} · {step ? `min–max and mean per ${step} s` : "raw samples"}
        {live ? " · live" : ""}
        {history.isFetching ? " · loading…" : ""}
      </p>
      {history.error ? <p className="error">{history.error instanceof ApiError ? `${history.error.code}: ${history.error.message}` : String(history.error)}</p> : null}
      {exported ? (
        <p className={exported.error ? "error" : "ok"} role="status" data-testid="export-message">
          {exported.text}
        </p>
      ) : null}
      <div className="charts">
        {CHARTS.map((c, i) => (
          <Chart key={c.param} title={c.title} unit={c.unit} color={c.color} band={bands[i] ?? EMPTY} testId={c.testId} yRange={c.yRange} xRange={xRange} />
        ))}
      </div>
    </div>
  );
}
