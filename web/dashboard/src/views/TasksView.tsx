import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { ApiError } from "../api/client";
import { TASK_KINDS } from "../api/types";
import type { TaskKind } from "../api/types";
import { utcDateTime, utcTime } from "../format";
import { useUpcomingPasses } from "../queries";
import { api, queryClient } from "../services";
import { allows, useDashboard } from "../store";
import { formFieldOf, taskBody, timeline, unplaced } from "../tasks";
import type { Bar, Row, TaskForm } from "../tasks";

const ROW_PX = 26;
const LABEL_PX = 150;
const WIDTH_PX = 1200;
const WINDOW_MS = 3 * 3_600_000; // 30 min back, the rest ahead
const BACK_MS = 1_800_000;

const COLORS: Record<string, string> = {
  pass: "rgba(79, 195, 247, 0.25)",
  scheduled: "#90caf9",
  running: "#ffb74d",
  done: "#81c784",
  failed: "#e57373",
  cancelled: "#9e9e9e",
  pending: "#ce93d8",
};

const EMPTY_FORM: TaskForm = {
  kind: "imaging", satelliteId: "", stationId: "", priority: "50", durationS: "60", deadlineMin: "60",
  targetLat: "", targetLon: "", dependsOn: "",
};

/** Tasks, re-fetched when a task or plan event arrives (and every 30 s). */
function useTasks() {
  const revision = useDashboard((s) => s.live.tasksRevision);
  useEffect(() => {
    if (revision === 0) return;
    void queryClient.invalidateQueries({ queryKey: ["tasks"] });
    void queryClient.invalidateQueries({ queryKey: ["plan"] });
  }, [revision]);
  const tasks = useQuery({ queryKey: ["tasks"], queryFn: () => api.tasks(), refetchInterval: 30_000 });
  const plan = useQuery({ queryKey: ["plan"], queryFn: () => api.plan(), refetchInterval: 30_000 });
  return { tasks, plan };
}

function Rows({ title, rows, y0, x }: { title: string; rows: Row[]; y0: number; x: (ms: number) => number }) {
  return (
    <g data-testid={`rows-${title}`}>
      <text x={4} y={y0 + 14} className="axis">
        {title}
      </text>
      {rows.map((row, i) => {
        const y = y0 + 20 + i * ROW_PX;
        return (
          <g key={row.id} data-row={row.id}>
            <text x={4} y={y + ROW_PX / 2 + 4} className="label">
              {row.id}
            </text>
            <line x1={LABEL_PX} x2={WIDTH_PX} y1={y + ROW_PX - 1} y2={y + ROW_PX - 1} className="row-line" />
            {row.bars.map((bar: Bar) => {
              const x1 = x(bar.startMs);
              const x2 = Math.max(x1 + 2, x(bar.endMs));
              const task = bar.kind !== "pass";
              return (
                <rect key={bar.key} x={x1} y={y + (task ? 6 : 2)} width={x2 - x1} height={ROW_PX - (task ? 12 : 4)} rx={2}
                      fill={COLORS[task ? (bar.status ?? "pending") : "pass"]} data-task={bar.taskId ?? undefined} data-status={bar.status ?? undefined}>
                  <title>{`${bar.label}\n${utcTime(bar.startMs)} - ${utcTime(bar.endMs)} UTC`}</title>
                </rect>
              );
            })}
          </g>
        );
      })}
    </g>
  );
}

export function TasksView() {
  const { tasks, plan } = useTasks();
  const passes = useUpcomingPasses();
  const role = useDashboard((s) => s.role);
  const canOperate = allows(role, "operator");
  const [form, setForm] = useState<TaskForm>(EMPTY_FORM);
  const [problem, setProblem] = useState<{ field: keyof TaskForm | null; message: string } | null>(null);
  const [nowMs, setNowMs] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNowMs(Date.now()), 5_000);
    return () => clearInterval(timer);
  }, []);

  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: ["tasks"] });
    void queryClient.invalidateQueries({ queryKey: ["plan"] });
  };
  const create = useMutation({
    mutationFn: (body: Record<string, unknown>) => api.createTask(body),
    onSuccess: (task) => {
      setProblem({ field: null, message: `task #${task.id} submitted` });
      refresh();
    },
    onError: (cause) =>
      setProblem({
        field: cause instanceof ApiError ? formFieldOf(cause.details?.field) : null,
        message: cause instanceof Error ? cause.message : String(cause),
      }),
  });
  const cancel = useMutation({ mutationFn: (id: number) => api.cancelTask(id), onSettled: refresh });
  const replan = useMutation({ mutationFn: () => api.replan(), onSettled: refresh });

  const fromMs = nowMs - BACK_MS;
  const toMs = fromMs + WINDOW_MS;
  const x = (ms: number) => LABEL_PX + ((Math.min(Math.max(ms, fromMs), toMs) - fromMs) / (toMs - fromMs)) * (WIDTH_PX - LABEL_PX);
  const rows = useMemo(() => timeline(tasks.data ?? [], passes.data ?? [], fromMs, toMs), [tasks.data, passes.data, fromMs, toMs]);
  const left = unplaced(tasks.data ?? []);
  const satY = 24;
  const stationY = satY + 24 + rows.satellites.length * ROW_PX;
  const heightPx = stationY + 24 + rows.stations.length * ROW_PX;
  const run = plan.data?.run;

  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    const result = taskBody(form, Date.now());
    if (!result.ok) {
      setProblem({ field: result.field, message: `${result.field}: ${result.message}` });
      return;
    }
    create.mutate(result.body);
  };
  const field = (name: keyof TaskForm, label: string, placeholder = "") => (
    <label className={problem?.field === name ? "invalid" : ""}>
      {label}
      <input value={form[name]} placeholder={placeholder} aria-label={label}
             onChange={(e) => setForm({ ...form, [name]: e.target.value })} />
    </label>
  );

  return (
    <section className="panel tasks">
      <div className="toolbar">
        <h2>Tasks</h2>
        <span className="muted" data-testid="plan-run">
          {run ? `plan #${run.id} (${run.cause}) ${utcDateTime(Date.parse(run.at))}: ${run.placed} placed, ${run.unplaced} unplaced, ${run.moved} moved, ${run.solve_ms.toFixed(1)} ms` : "no plan yet"}
        </span>
        {canOperate ? <button onClick={() => replan.mutate()}>Re-plan</button> : null}
      </div>
      {tasks.error ? <p className="error">{tasks.error.message}</p> : null}
      <div className="timeline-scroll">
        <svg width={WIDTH_PX} height={heightPx} className="timeline" data-testid="tasks-timeline">
          {Array.from({ length: 7 }, (_, i) => {
            const t = fromMs + i * 1_800_000;
            return (
              <g key={i}>
                <line x1={x(t)} x2={x(t)} y1={18} y2={heightPx} className="hour" />
                <text x={x(t) + 2} y={14} className="axis">{utcTime(t).slice(0, 5)}</text>
              </g>
            );
          })}
          <Rows title="satellites" rows={rows.satellites} y0={satY} x={x} />
          <Rows title="stations" rows={rows.stations} y0={stationY} x={x} />
          <line x1={x(nowMs)} x2={x(nowMs)} y1={18} y2={heightPx} className="now" />
        </svg>
      </div>
      {plan.data?.changes.length ? (
        <ul className="plan-changes" data-testid="plan-changes">
          {plan.data.changes.slice(0, 20).map((c) => (
            <li key={`${c.task_id}-${c.change}`}>
              #{c.task_id} {c.change}: {c.detail}
            </li>
          ))}
        </ul>
      ) : null}
      <h3>Not placed</h3>
      <table className="grid" data-testid="unplaced">
        <tbody>
          {left.map(({ task, why }) => (
            <tr key={task.id}>
              <td>#{task.id}</td>
              <td>{task.kind}</td>
              <td>{task.satellite_id ?? "any"}</td>
              <td>{why}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {canOperate ? (
        <form className="task-form" onSubmit={submit} data-testid="task-form">
          <label>
            kind
            <select value={form.kind} aria-label="kind" onChange={(e) => setForm({ ...form, kind: e.target.value as TaskKind })}>
              {TASK_KINDS.map((k) => (
                <option key={k}>{k}</option>
              ))}
            </select>
          </label>
          {field("satelliteId", "satellite", "any")}
          {form.kind === "downlink" ? field("stationId", "station", "any") : null}
          {form.kind === "imaging" ? field("targetLat", "target lat °") : null}
          {form.kind === "imaging" ? field("targetLon", "target lon °") : null}
          {field("priority", "priority")}
          {field("durationS", "duration s")}
          {field("deadlineMin", "deadline (min from now)")}
          {form.kind === "downlink" ? field("dependsOn", "after task #") : null}
          <button type="submit" disabled={create.isPending}>Submit</button>
        </form>
      ) : (
        <p className="muted">Submitting tasks needs the operator role.</p>
      )}
      {problem ? <p className={problem.field ? "error" : "ok"} role="status">{problem.message}</p> : null}
      <h3>All tasks</h3>
      <table className="grid" data-testid="task-list">
        <tbody>
          {(tasks.data ?? []).map((t) => (
            <tr key={t.id} data-status={t.status}>
              <td>#{t.id}</td>
              <td>{t.kind}</td>
              <td>{t.status}</td>
              <td>{t.placement ? `${t.placement.satellite_id}${t.placement.station_id ? ` → ${t.placement.station_id}` : ""} ${utcTime(Date.parse(t.placement.start))}` : (t.satellite_id ?? "any")}</td>
              <td>{t.reason ?? ""}</td>
              <td>{canOperate && ["pending", "scheduled", "running"].includes(t.status) ? <button onClick={() => cancel.mutate(t.id)}>Cancel</button> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
