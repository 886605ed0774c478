import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import type { ReactNode } from "react";
import { ApiError } from "../api/client";
import { CatalogImport } from "../components/CatalogImport";
import { ELEMENTS_FILES, TextFileInput } from "../components/TextFileInput";
import { checkElements, checkSatelliteForm, satelliteBody } from "../elements";
import type { SatelliteFields } from "../elements";
import { href } from "../route";
import { api, live } from "../services";
import { allows, useDashboard } from "../store";

const EMPTY: SatelliteFields = { id: "", name: "", elements: "", memoryCapacityMb: "", energyPct: "" };
const FORMAT_LABEL = { tle: "TLE", "omm-json": "OMM (JSON)", "omm-kvn": "OMM (KVN)" } as const;
// The gateway's field names as this form's.
const FIELD_OF: Record<string, keyof SatelliteFields> = {
  id: "id",
  name: "name",
  elements: "elements",
  memory_capacity_mb: "memoryCapacityMb",
  energy_pct: "energyPct",
};

/** A new satellite: id, name, its orbit pasted or uploaded (TLE or OMM), capacities. Checked
 * here first, then by the gateway; once created it is shown on the map. */
export function SatelliteForm() {
  const role = useDashboard((s) => s.role);
  const [fields, setFields] = useState<SatelliteFields>(EMPTY);
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);

  const create = useMutation({
    mutationFn: () => api.createSatellite(satelliteBody(fields)),
    onSuccess: async (sat) => {
      setMessage({ text: `created ${sat.id}`, error: false });
      await live.reloadAll();
      window.location.hash = href({ view: "map", satId: sat.id });
    },
    onError: (cause) => {
      if (cause instanceof ApiError) {
        const field = String(cause.details?.field ?? "").split(".")[0] ?? "";
        const mine = FIELD_OF[field] ?? (field === "tle" || field === "omm" ? "elements" : undefined);
        if (mine) setProblems({ [mine]: cause.message });
        setMessage({ text: `${cause.code}: ${cause.message}`, error: true });
      } else setMessage({ text: String(cause), error: true });
    },
  });

  if (!allows(role, "operator")) {
    return (
      <section className="panel">
        <h2>New satellite</h2>
        <p className="muted">Creating satellites needs the operator role: sign in with an operator or admin token.</p>
      </section>
    );
  }

  const set = (key: keyof SatelliteFields, value: string) => {
    setFields((f) => {
      const next = { ...f, [key]: value };
      if (key === "elements" && !f.name.trim()) {
        const check = checkElements(value);
        if (check.ok && check.name) next.name = check.name.slice(0, 128);
      }
      return next;
    });
    setProblems((p) => Object.fromEntries(Object.entries(p).filter(([k]) => k !== key)));
  };
  const check = fields.elements.trim() ? checkElements(fields.elements) : null;
  const field = (key: keyof SatelliteFields, label: string, input: ReactNode) => (
    <label className={problems[key] ? "invalid" : ""}>
      {label}
      {input}
      {problems[key] ? <span className="error">{problems[key]}</span> : null}
    </label>
  );

  return (
    <>
    <section className="panel" data-testid="satellite-form">
      <h2>New satellite</h2>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          const found = checkSatelliteForm(fields);
          setProblems(found);
          if (Object.keys(found).length) setMessage({ text: `check: ${Object.keys(found).join(", ")}`, error: true });
          else create.mutate();
        }}
      >
        {field("id", "id", <input value={fields.id} onChange={(e) => set("id", e.target.value)} aria-label="satellite id" placeholder="sat-42" />)}
        {field("name", "name", <input value={fields.name} onChange={(e) => set("name", e.target.value)} aria-label="satellite name" />)}
        {field(
          "elements",
          "orbit: a TLE (two lines, or three with a name) or an OMM (JSON or KVN); empty: no orbit",
          <textarea
            className="mono"
            rows={6}
            cols={72}
            spellCheck={false}
            value={fields.elements}
            onChange={(e) => set("elements", e.target.value)}
            aria-label="elements"
          />,
        )}
        <div className="row">
          <label>
            or upload{" "}
            <TextFileInput accept={ELEMENTS_FILES} label="elements file" onText={(text) => set("elements", text)} />
          </label>
          {check ? (
            <span className={check.ok ? "ok" : "error"} data-testid="elements-check">
              {check.ok ? `${FORMAT_LABEL[check.format]}${check.name ? `: ${check.name}` : ""}` : check.message}
            </span>
          ) : null}
        </div>
        <div className="row">
          {field("memoryCapacityMb", "memory capacity (MB) ", <input value={fields.memoryCapacityMb} onChange={(e) => set("memoryCapacityMb", e.target.value)} aria-label="memory capacity MB" placeholder="1024" size={8} />)}
          {field("energyPct", "energy (%) ", <input value={fields.energyPct} onChange={(e) => set("energyPct", e.target.value)} aria-label="energy %" placeholder="100" size={5} />)}
        </div>
        <div className="row">
          <button type="submit" disabled={create.isPending}>
            Create
          </button>
          <a href={href({ view: "satellites" })}>cancel</a>
        </div>
      </form>
      {message ? (
        <p className={message.error ? "error" : "ok"} role="status" data-testid="form-message">
          {message.text}
        </p>
      ) : null}
    </section>
    <CatalogImport />
    </>
  );
}
