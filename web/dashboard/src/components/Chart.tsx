import { useEffect, useRef } from "react";
import uPlot from "uplot";
import { TIME_TICK_SPACE_PX, timeLabels } from "../series";
import type { Band } from "../series";

const AXIS = { stroke: "#9fb3c8", grid: { stroke: "rgba(255,255,255,0.06)" }, ticks: { stroke: "rgba(255,255,255,0.1)" } };

/** A uPlot time series (canvas: thousands of points redraw in a millisecond or two): the mean as
 * a line and, where buckets hold several samples, their min-max as a shaded band, so a peak
 * inside a bucket stays visible. The plot is created once; new data goes through setData. Time
 * labels are UTC, one line each, and ticks are kept far enough apart for the longest label. */
export function Chart({
  title,
  unit,
  band,
  color,
  testId,
  yRange,
  xRange,
}: {
  title: string;
  unit: string;
  band: Band;
  color: string;
  testId?: string;
  /** fixed y range (energy: 0-100 %); by default the data's */
  yRange?: [number, number];
  /** the time window shown (seconds since the epoch); by default the data's */
  xRange?: [number, number];
}) {
  const [yMin, yMax] = yRange ?? [null, null];
  const hostRef = useRef<HTMLDivElement>(null);
  const plotRef = useRef<uPlot | null>(null);
  const xRangeRef = useRef(xRange);
  xRangeRef.current = xRange;

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const options: uPlot.Options = {
      width: Math.max(200, host.clientWidth),
      height: 160,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: (_u, min, max) => xRangeRef.current ?? [min, max] },
        y: yMin !== null && yMax !== null ? { range: [yMin, yMax] } : {},
      },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // ticks on UTC boundaries: operators work in UTC
      axes: [
        { ...AXIS, space: TIME_TICK_SPACE_PX, values: (_u, splits, _axis, _space, incr) => timeLabels(splits, incr) },
        { ...AXIS, size: 60 },
      ],
      series: [
        {},
        { label: `${title} (${unit})`, stroke: color, width: 1.5, spanGaps: false },
        { label: "min", stroke: "transparent", width: 0, points: { show: false } },
        { label: "max", stroke: "transparent", width: 0, points: { show: false } },
      ],
      bands: [{ series: [3, 2], fill: `${color}40` }],
    };
    const plot = new uPlot(options, [[], [], [], []], host);
    plotRef.current = plot;
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(200, host.clientWidth), height: 160 }));
    observer.observe(host);
    return () => {
      observer.disconnect();
      plot.destroy();
      plotRef.current = null;
    };
  }, [title, unit, color, yMin, yMax]);

  useEffect(() => {
    plotRef.current?.setData([band.t_s, band.avg, band.min, band.max]);
  }, [band]);

  const last = band.avg[band.avg.length - 1];
  let peak: number | null = null;
  for (const v of band.max) if (v !== null && (peak === null || v > peak)) peak = v;
  return (
    <figure className="chart" data-testid={testId} data-points={band.t_s.length}>
      <figcaption>
        {title} <span className="muted">{typeof last === "number" ? `${last.toFixed(1)} ${unit}` : ""}</span>
        {peak !== null ? <span className="muted"> · max {peak.toFixed(1)}</span> : null}
      </figcaption>
      <div ref={hostRef} />
    </figure>
  );
}
