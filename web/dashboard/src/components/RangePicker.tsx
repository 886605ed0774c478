import { useState } from "react";
import { LAST_RANGES, fromInputUtc, rangeProblem, toInputUtc } from "../series";
import type { RangeChoice } from "../series";

/** Last 15 min / 1 h / 6 h / 24 h, or a custom from-to in UTC (applied when valid). */
export function RangePicker({ value, onChange, nowMs }: { value: RangeChoice; onChange: (choice: RangeChoice) => void; nowMs: number }) {
  const [custom, setCustom] = useState(() => ({ from: toInputUtc(nowMs - 3_600_000), to: toInputUtc(nowMs) }));
  const [open, setOpen] = useState(value.kind === "custom");
  const fromMs = fromInputUtc(custom.from);
  const toMs = fromInputUtc(custom.to);
  const problem = rangeProblem(fromMs, toMs);
  return (
    <div className="row range-picker" data-testid="range-picker">
      <span className="muted">range</span>
      {LAST_RANGES.map((r) => (
        <button
          key={r.seconds}
          type="button"
          className={value.kind === "last" && value.seconds === r.seconds && !open ? "active" : ""}
          aria-pressed={value.kind === "last" && value.seconds === r.seconds && !open}
          data-range={r.seconds}
          onClick={() => {
            setOpen(false);
            onChange({ kind: "last", seconds: r.seconds });
          }}
        >
          last {r.label}
        </button>
      ))}
      <button type="button" className={open ? "active" : ""} aria-pressed={open} data-range="custom" onClick={() => setOpen(true)}>
        custom
      </button>
      {open ? (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (!problem) onChange({ kind: "custom", fromMs, toMs });
          }}
        >
          <label>
            from{" "}
            <input type="datetime-local" value={custom.from} onChange={(e) => setCustom({ ...custom, from: e.target.value })} aria-label="from (UTC)" />
          </label>
          <label>
            to{" "}
            <input type="datetime-local" value={custom.to} onChange={(e) => setCustom({ ...custom, to: e.target.value })} aria-label="to (UTC)" />
          </label>
          <span className="muted">UTC</span>
          <button type="submit" disabled={problem !== null}>
            Show
          </button>
          {problem ? <span className="error">{problem}</span> : null}
        </form>
      ) : null}
    </div>
  );
}
