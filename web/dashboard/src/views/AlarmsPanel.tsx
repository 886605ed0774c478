import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { ApiError } from "../api/client";
import { relative, utcDateTime } from "../format";
import { useAlarms } from "../queries";
import { href } from "../route";
import { api } from "../services";
import { allows, useDashboard } from "../store";

export function AlarmsPanel() {
  const alarms = useAlarms();
  const role = useDashboard((s) => s.role);
  const queryClient = useQueryClient();
  const [error, setError] = useState<string | null>(null);
  const [nowMs, setNowMs] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 5000);
    return () => clearInterval(timer);
  }, []);
  const clear = useMutation({
    mutationFn: (id: number) => api.clearAlarm(id),
    onSuccess: () => {
      setError(null);
      void queryClient.invalidateQueries({ queryKey: ["alarms"] });
    },
    onError: (cause) => setError(cause instanceof ApiError ? cause.message : String(cause)),
  });
  const canClear = allows(role, "operator");
  const items = alarms.data ?? [];
  return (
    <section className="panel">
      <div className="toolbar">
        <h2>Alarms</h2>
        <span className="muted" data-testid="alarm-count">
          {alarms.error ? "unknown (not loaded)" : `${items.length} active`}
        </span>
      </div>
      {error ? <p className="error">{error}</p> : null}
      {alarms.error ? <p className="error">{alarms.error.message}</p> : null}
      <table className="grid" data-testid="alarms">
        <thead>
          <tr>
            <th>severity</th>
            <th>satellite</th>
            <th>kind</th>
            <th>message</th>
            <th>raised (UTC)</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((a) => (
            <tr key={a.id} data-alarm={a.id} className={`sev-${a.severity}`}>
              <td>
                <span className={`severity severity-${a.severity}`}>{a.severity}</span>
              </td>
              <td>
                <a href={href({ view: "satellite", satId: a.satellite_id })}>{a.satellite_id}</a>
              </td>
              <td>{a.kind}</td>
              <td>{a.message}</td>
              <td title={relative(Date.parse(a.raised_at), nowMs)}>{utcDateTime(Date.parse(a.raised_at))}</td>
              <td>
                {canClear ? (
                  <button type="button" onClick={() => clear.mutate(a.id)} disabled={clear.isPending}>
                    Clear
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!items.length && !alarms.isLoading && !alarms.error ? <p className="muted">No active alarm.</p> : null}
    </section>
  );
}
