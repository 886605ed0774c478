import { useEffect, useRef } from "react";
import uPlot from "uplot";

export interface Series {
  /** seconds since the epoch (uPlot's time scale) */
  t_s: number[];
  values: (number | null)[];
}

/** A uPlot time series (canvas: thousands of points redraw in a millisecond or two). The plot
 * is created once; new data goes through setData. */
export function Chart({
  title,
  unit,
  series,
  color,
  testId,
  yRange,
}: {
  title: string;
  unit: string;
  series: Series;
  color: string;
  testId?: string;
  /** fixed y range (energy: 0-100 %); by default the data's */
  yRange?: [number, number];
}) {
  const [yMin, yMax] = yRange ?? [null, null];
  const hostRef = useRef<HTMLDivElement>(null);
  const plotRef = useRef<uPlot | null>(null);

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const options: uPlot.Options = {
      width: Math.max(200, host.clientWidth),
      height: 160,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: yMin !== null && yMax !== null ? { range: [yMin, yMax] } : {} },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // operators work in UTC
      axes: [
        { stroke: "#9fb3c8", grid: { stroke: "rgba(255,255,255,0.06)" }, ticks: { stroke: "rgba(255,255,255,0.1)" } },
        { stroke: "#9fb3c8", grid: { stroke: "rgba(255,255,255,0.06)" }, ticks: { stroke: "rgba(255,255,255,0.1)" }, size: 60 },
      ],
      series: [{}, { label: `${title} (${unit})`, stroke: color, width: 1.5, spanGaps: false }],
    };
    const plot = new uPlot(options, [[], []], host);
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
    plotRef.current?.setData([series.t_s, series.values]);
  }, [series]);

  const last = series.values[series.values.length - 1];
  return (
    <figure className="chart" data-testid={testId} data-points={series.t_s.length}>
      <figcaption>
        {title} <span className="muted">{typeof last === "number" ? `${last.toFixed(1)} ${unit}` : ""}</span>
      </figcaption>
      <div ref={hostRef} />
    </figure>
  );
}
