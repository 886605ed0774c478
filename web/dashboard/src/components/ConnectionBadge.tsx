import { useEffect, useState } from "react";
import { useDashboard } from "../store";

/** After this long without any byte from the stream (events arrive every second, heartbeats
 * every 15 s), what is shown may be out of date. */
export const STALE_AFTER_MS = 20_000;

export function ConnectionBadge() {
  const connection = useDashboard((s) => s.connection);
  const detail = useDashboard((s) => s.connectionDetail);
  const lastDataMs = useDashboard((s) => s.lastDataMs);
  const lastEventId = useDashboard((s) => s.live.lastEventId);
  const resets = useDashboard((s) => s.live.resets);
  const [nowMs, setNowMs] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  const ageS = lastDataMs === null ? null : Math.max(0, Math.round((nowMs - lastDataMs) / 1000));
  let state: string = connection;
  let text: string;
  if (connection === "live" && ageS !== null && ageS * 1000 > STALE_AFTER_MS) {
    state = "stale";
    text = `stale: no data for ${ageS} s`;
  } else if (connection === "live") {
    text = "live";
  } else if (connection === "reconnecting") {
    text = `reconnecting${lastEventId !== null ? ` (resume after #${lastEventId})` : ""}`;
  } else if (connection === "unauthorized") {
    text = "stream refused: sign in";
  } else {
    text = "connecting";
  }
  const title = [detail, ageS !== null ? `last data ${ageS} s ago` : "", lastEventId !== null ? `last event #${lastEventId}` : ""]
    .filter(Boolean)
    .join(" · ");
  return (
    <span
      className={`conn conn-${state}`}
      data-testid="connection"
      data-state={state}
      data-last-event-id={lastEventId ?? ""}
      data-resets={resets}
      title={title}
    >
      <span className="dot" />
      {text}
      {connection !== "live" && lastDataMs !== null ? <span className="stale-note"> · data from {ageS} s ago</span> : null}
    </span>
  );
}
