import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { ALARM_STATES, SEVERITIES, acknowledgeAlarm, alarmHistory, clearAlarm, shelveAlarm, unshelveAlarm } from "../api/alarms";
import type { AlarmRecord } from "../api/alarms";
import { ApiError } from "../api/client";
import { useAlarmList } from "../alarmQueries";
import { LimitEditor } from "../components/LimitEditor";
import { relative, utcDateTime } from "../format";
import { href } from "../route";
import { api } from "../services";
import { allows, useDashboard } from "../store";

const SHELVE_CHOICES_S = [60, 300, 900, 3600, 4 * 3600, 24 * 3600];
const OPEN_STATES = ["unacknowledged", "acknowledged", "shelved"];

function duration(s: number): string {
  return s >= 3600 ? `${s / 3600} h` : `${s / 60} min`;
}

type Action = { kind: "acknowledge" | "shelve" | "unshelve" | "clear"; id: number; comment: string; durationS: number };

function History({ id }: { id: number }) {
  const history = useQuery({ queryKey: ["alarms", "history", id], queryFn: () => alarmHistory(api, id) });
  if (history.error) return <p className="error">{history.error.message}</p>;
  return (
    <ol className="alarm-history" data-testid="alarm-history">
      {(history.data ?? []).map((t) => (
        <li key={t.id} data-transition={t.transition}>
          {utcDateTime(Date.parse(t.at))} · <b>{t.transition}</b> ({t.state}, {t.severity}) by {t.actor}
          {t.value !== null && t.value !== undefined ? ` · value ${t.value.toPrecision(4)}` : ""}
          {t.comment ? ` · “${t.comment}”` : ""}
        </li>
      ))}
    </ol>
  );
}

function stateText(a: AlarmRecord, nowMs: number): string {
  if (a.state === "shelved" && a.shelved_until) return `shelved until ${utcDateTime(Date.parse(a.shelved_until))} (${relative(Date.parse(a.shelved_until), nowMs)})`;
  if (a.state === "acknowledged") return `acknowledged by ${a.acknowledged_by ?? "?"}`;
  if (a.state === "unacknowledged" && !a.active) return "unacknowledged (value back in limits)";
  return a.state;
}

export function AlarmsPanel() {
  const [severities, setSeverities] = useState<string[]>([]);
  const [states, setStates] = useState<string[]>(OPEN_STATES);
  const alarms = useAlarmList({ states, severities });
  const role = useDashboard((s) => s.role);
  const queryClient = useQueryClient();
  const [error, setError] = useState<string | null>(null);
  const [comment, setComment] = useState("");
  const [shelveS, setShelveS] = useState(300);
  const [open, setOpen] = useState<number | null>(null);
  const [nowMs, setNowMs] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 5000);
    return () => clearInterval(timer);
  }, []);
  const act = useMutation({
    mutationFn: (a: Action) => {
      if (a.kind === "acknowledge") return acknowledgeAlarm(api, a.id, a.comment);
      if (a.kind === "shelve") return shelveAlarm(api, a.id, a.durationS, a.comment);
      if (a.kind === "unshelve") return unshelveAlarm(api, a.id);
      return clearAlarm(api, a.id);
    },
    onSuccess: () => {
      setError(null);
      setComment("");
      void queryClient.invalidateQueries({ queryKey: ["alarms"] });
    },
    onError: (cause) => setError(cause instanceof ApiError ? cause.message : String(cause)),
  });
  const canAct = allows(role, "operator");
  const items = alarms.data ?? [];
  const toggle = (list: string[], value: string) => (list.includes(value) ? list.filter((v) => v !== value) : [...list, value]);
  const run = (kind: Action["kind"], id: number) => act.mutate({ kind, id, comment, durationS: shelveS });

  return (
    <>
      <section className="panel">
        <div className="toolbar">
          <h2>Alarms</h2>
          <span className="muted" data-testid="alarm-count">
            {alarms.error ? "unknown (not loaded)" : `${items.length} ${states.length === 3 && states.every((s) => OPEN_STATES.includes(s)) ? "active" : "shown"}`}
          </span>
          <span className="filters" data-testid="alarm-filters">
            {SEVERITIES.map((s) => (
              <label key={s}>
                <input type="checkbox" checked={severities.includes(s)} onChange={() => setSeverities(toggle(severities, s))} aria-label={`severity ${s}`} /> {s}
              </label>
            ))}
            {" · "}
            {ALARM_STATES.map((s) => (
              <label key={s}>
                <input type="checkbox" checked={states.includes(s)} onChange={() => setStates(toggle(states, s))} aria-label={`state ${s}`} /> {s}
              </label>
            ))}
          </span>
        </div>
        {canAct ? (
          <div className="toolbar alarm-actions">
            <input value={comment} onChange={(e) => setComment(e.target.value)} placeholder="comment (kept with the alarm)" aria-label="comment" maxLength={1000} size={40} />
            <label>
              shelve for{" "}
              <select value={shelveS} onChange={(e) => setShelveS(Number(e.target.value))} aria-label="shelve duration">
                {SHELVE_CHOICES_S.map((s) => (
                  <option key={s} value={s}>
                    {duration(s)}
                  </option>
                ))}
              </select>
            </label>
          </div>
        ) : null}
        {error ? <p className="error" data-testid="alarm-error">{error}</p> : null}
        {alarms.error ? <p className="error">{alarms.error.message}</p> : null}
        <table className="grid" data-testid="alarms">
          <thead>
            <tr>
              <th>severity</th>
              <th>satellite</th>
              <th>kind</th>
              <th>message</th>
              <th>state</th>
              <th>raised (UTC)</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.id} data-alarm={a.id} data-state={a.state} className={`sev-${a.severity} state-${a.state}`}>
                <td>
                  <span className={`severity severity-${a.severity}`}>{a.severity}</span>
                </td>
                <td>
                  <a href={href({ view: "satellite", satId: a.satellite_id })}>{a.satellite_id}</a>
                </td>
                <td>{a.kind}</td>
                <td className="wrap">
                  {a.message}
                  {a.comment ? <div className="muted">“{a.comment}”</div> : null}
                  {open === a.id ? <History id={a.id} /> : null}
                </td>
                <td className="wrap" data-testid="alarm-state">{stateText(a, nowMs)}</td>
                <td title={relative(Date.parse(a.raised_at), nowMs)}>{utcDateTime(Date.parse(a.raised_at))}</td>
                <td className="actions">
                  <button type="button" onClick={() => setOpen(open === a.id ? null : a.id)}>
                    History
                  </button>
                  {canAct && a.state === "unacknowledged" ? (
                    <button type="button" onClick={() => run("acknowledge", a.id)} disabled={act.isPending}>
                      Acknowledge
                    </button>
                  ) : null}
                  {canAct && a.active && (a.state === "unacknowledged" || a.state === "acknowledged") ? (
                    <button type="button" onClick={() => run("shelve", a.id)} disabled={act.isPending}>
                      Shelve
                    </button>
                  ) : null}
                  {canAct && a.state === "shelved" ? (
                    <button type="button" onClick={() => run("unshelve", a.id)} disabled={act.isPending}>
                      Unshelve
                    </button>
                  ) : null}
                  {canAct && a.state !== "cleared" ? (
                    <button type="button" onClick={() => run("clear", a.id)} disabled={act.isPending}>
                      Clear
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!items.length && !alarms.isLoading && !alarms.error ? <p className="muted">No alarm.</p> : null}
      </section>
      <LimitEditor />
    </>
  );
}
