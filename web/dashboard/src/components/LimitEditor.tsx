import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { LIMIT_PARAMETERS, deleteLimit, putLimit } from "../api/alarms";
import type { Limit, LimitBody } from "../api/alarms";
import { ApiError } from "../api/client";
import { useLimits } from "../alarmQueries";
import { utcDateTime } from "../format";
import { api } from "../services";
import { allows, useDashboard } from "../store";

const BOUNDS = ["warning_low", "warning_high", "critical_low", "critical_high"] as const;
type Bound = (typeof BOUNDS)[number];

interface Draft {
  parameter: string;
  satId: string; // "": the fleet
  bounds: Record<Bound, string>;
  hysteresis: string;
  persistence: string;
  latched: boolean;
}

const EMPTY: Draft = {
  parameter: "energy_pct",
  satId: "",
  bounds: { warning_low: "", warning_high: "", critical_low: "", critical_high: "" },
  hysteresis: "0",
  persistence: "1",
  latched: false,
};

function draftOf(limit: Limit): Draft {
  const text = (v: number | null | undefined) => (v === null || v === undefined ? "" : String(v));
  return {
    parameter: limit.parameter,
    satId: limit.satellite_id ?? "",
    bounds: { warning_low: text(limit.warning_low), warning_high: text(limit.warning_high), critical_low: text(limit.critical_low), critical_high: text(limit.critical_high) },
    hysteresis: text(limit.hysteresis),
    persistence: text(limit.persistence),
    latched: limit.latched ?? false,
  };
}

/** The body to PUT, or the name of the field that is not a number. */
export function bodyOf(draft: Draft): LimitBody | string {
  const body: LimitBody = { latched: draft.latched };
  for (const name of BOUNDS) {
    const text = draft.bounds[name].trim();
    if (text === "") body[name] = null;
    else if (Number.isFinite(Number(text))) body[name] = Number(text);
    else return name;
  }
  const hysteresis = Number(draft.hysteresis.trim() || "0");
  const persistence = Number(draft.persistence.trim() || "1");
  if (!Number.isFinite(hysteresis)) return "hysteresis";
  if (!Number.isInteger(persistence)) return "persistence";
  return { ...body, hysteresis, persistence };
}

function scope(limit: Limit): string {
  return limit.satellite_id ?? "fleet";
}

/** Limits: the fleet's and each satellite's override, editable by operators (audited server-side). */
export function LimitEditor() {
  const limits = useLimits();
  const role = useDashboard((s) => s.role);
  const canEdit = allows(role, "operator");
  const queryClient = useQueryClient();
  const [draft, setDraft] = useState<Draft | null>(null);
  const [error, setError] = useState<string | null>(null);
  const done = () => {
    setError(null);
    setDraft(null);
    void queryClient.invalidateQueries({ queryKey: ["limits"] });
  };
  const fail = (cause: unknown) => {
    if (cause instanceof ApiError) setError(`${cause.details?.field ? `${String(cause.details.field)}: ` : ""}${cause.message}`);
    else setError(String(cause));
  };
  const save = useMutation({
    mutationFn: (d: Draft) => {
      const body = bodyOf(d);
      if (typeof body === "string") return Promise.reject(new Error(`${body}: not a number`));
      return putLimit(api, d.parameter, body, d.satId.trim() || null);
    },
    onSuccess: done,
    onError: fail,
  });
  const remove = useMutation({ mutationFn: (l: Limit) => deleteLimit(api, l.parameter, l.satellite_id), onSuccess: done, onError: fail });
  const setBound = (name: Bound, value: string) => setDraft((d) => (d ? { ...d, bounds: { ...d.bounds, [name]: value } } : d));

  return (
    <section className="panel" data-testid="limit-editor">
      <div className="toolbar">
        <h2>Limits</h2>
        <span className="muted">in limits: low ≤ value &lt; high · a satellite's own limit overrides the fleet's</span>
        {canEdit ? (
          <button type="button" onClick={() => setDraft({ ...EMPTY, bounds: { ...EMPTY.bounds } })} data-testid="limit-new">
            New limit
          </button>
        ) : null}
      </div>
      {error ? <p className="error" data-testid="limit-error">{error}</p> : null}
      {limits.error ? <p className="error">{limits.error.message}</p> : null}
      {draft ? (
        <form
          className="limit-form"
          data-testid="limit-form"
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate(draft);
          }}
        >
          <label>
            parameter
            <select value={draft.parameter} onChange={(e) => setDraft({ ...draft, parameter: e.target.value })} aria-label="parameter">
              {LIMIT_PARAMETERS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
          <label>
            satellite
            <input value={draft.satId} placeholder="fleet-wide" onChange={(e) => setDraft({ ...draft, satId: e.target.value })} aria-label="satellite" />
          </label>
          {BOUNDS.map((name) => (
            <label key={name}>
              {name.replace("_", " ")}
              <input value={draft.bounds[name]} inputMode="decimal" size={7} onChange={(e) => setBound(name, e.target.value)} aria-label={name} />
            </label>
          ))}
          <label>
            hysteresis
            <input value={draft.hysteresis} inputMode="decimal" size={5} onChange={(e) => setDraft({ ...draft, hysteresis: e.target.value })} aria-label="hysteresis" />
          </label>
          <label>
            persistence (samples)
            <input value={draft.persistence} inputMode="numeric" size={4} onChange={(e) => setDraft({ ...draft, persistence: e.target.value })} aria-label="persistence" />
          </label>
          <label>
            <input type="checkbox" checked={draft.latched} onChange={(e) => setDraft({ ...draft, latched: e.target.checked })} aria-label="latched" /> latched
          </label>
          <button type="submit" disabled={save.isPending}>
            Save
          </button>
          <button type="button" onClick={() => setDraft(null)}>
            Cancel
          </button>
        </form>
      ) : null}
      <table className="grid" data-testid="limits">
        <thead>
          <tr>
            <th>parameter</th>
            <th>scope</th>
            <th>critical low</th>
            <th>warning low</th>
            <th>warning high</th>
            <th>critical high</th>
            <th>hysteresis</th>
            <th>persistence</th>
            <th>latched</th>
            <th>changed (UTC)</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(limits.data ?? []).map((l) => (
            <tr key={`${l.parameter}/${scope(l)}`} data-limit={`${scope(l)}/${l.parameter}`}>
              <td>{l.parameter}</td>
              <td>{scope(l)}</td>
              <td className="num">{l.critical_low ?? "—"}</td>
              <td className="num">{l.warning_low ?? "—"}</td>
              <td className="num">{l.warning_high ?? "—"}</td>
              <td className="num">{l.critical_high ?? "—"}</td>
              <td className="num">{l.hysteresis}</td>
              <td className="num">{l.persistence}</td>
              <td>{l.latched ? "yes" : "no"}</td>
              <td title={`by ${l.updated_by}`}>{utcDateTime(Date.parse(l.updated_at))}</td>
              <td>
                {canEdit ? (
                  <>
                    <button type="button" onClick={() => setDraft(draftOf(l))}>
                      Edit
                    </button>{" "}
                    <button type="button" onClick={() => window.confirm(`Remove the ${scope(l)} limit on ${l.parameter}?`) && remove.mutate(l)}>
                      Remove
                    </button>
                  </>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
