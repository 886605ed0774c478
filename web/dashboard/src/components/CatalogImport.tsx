import { useState } from "react";
import { ApiError } from "../api/client";
import { chunked, entryBody, parseCatalog } from "../catalog";
import { api, live } from "../services";
import { TextFileInput } from "./TextFileInput";

interface Outcome {
  created: number;
  existing: number;
  failed: { id: string; message: string }[];
  /** a request refused whole (the rest was not sent) */
  stopped: string | null;
}

/** Many satellites at once from a catalog file (CelesTrak's TLE text), checked here first; sent
 * to POST /api/satellites/import in requests of IMPORT_CHUNK; satellites that exist are
 * counted, not failed, so the same file can be imported again. */
export function CatalogImport() {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(0);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const parsed = text.trim() ? parseCatalog(text) : null;
  const ready = parsed !== null && parsed.entries.length > 0 && parsed.problems.length === 0;

  const run = async () => {
    if (!parsed) return;
    setBusy(true);
    setSent(0);
    const result: Outcome = { created: 0, existing: 0, failed: [], stopped: null };
    for (const chunk of chunked(parsed.entries)) {
      try {
        const answer = await api.importSatellites(chunk.map(entryBody));
        result.created += answer.created;
        for (const item of answer.items) {
          if (item.status === 409) result.existing += 1;
          else if (item.status !== 201) result.failed.push({ id: item.id, message: item.error?.message ?? `HTTP ${item.status}` });
        }
      } catch (cause) {
        result.stopped = cause instanceof ApiError ? `${cause.code}: ${cause.message}` : String(cause);
        break;
      }
      setSent((n) => n + chunk.length);
    }
    setOutcome(result);
    setBusy(false);
    await live.reloadAll();
  };

  return (
    <section className="panel" data-testid="catalog-import">
      <h2>Import a catalog</h2>
      <p className="muted">TLE text as CelesTrak serves it: a name line, then the two lines of each satellite (its id: norad- and its catalog number).</p>
      <textarea
        className="mono"
        rows={6}
        cols={72}
        spellCheck={false}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setOutcome(null);
        }}
        aria-label="catalog"
      />
      <div className="row">
        <label>
          or upload{" "}
          <TextFileInput
            accept=".tle,.txt,text/plain"
            label="catalog file"
            onText={(t) => {
              setText(t);
              setOutcome(null);
            }}
          />
        </label>
        {parsed ? (
          <span className={parsed.problems.length ? "error" : "ok"} data-testid="catalog-check">
            {parsed.problems.length
              ? `${parsed.problems.length} problem(s): ${parsed.problems.slice(0, 3).join("; ")}`
              : `${parsed.entries.length} satellite(s)`}
          </span>
        ) : null}
      </div>
      <div className="row">
        <button type="button" disabled={!ready || busy} onClick={() => void run()}>
          {ready ? `Import ${parsed.entries.length} satellite(s)` : "Import"}
        </button>
        {busy ? <span data-testid="import-progress">{`sent ${sent} of ${parsed?.entries.length ?? 0}`}</span> : null}
      </div>
      {outcome ? (
        <div role="status" data-testid="import-result" className={outcome.failed.length || outcome.stopped ? "error" : "ok"}>
          <p>{`created ${outcome.created}, already there ${outcome.existing}, failed ${outcome.failed.length}`}</p>
          {outcome.stopped ? <p>{`stopped: ${outcome.stopped}`}</p> : null}
          {outcome.failed.length ? (
            <ul data-testid="import-failures">
              {outcome.failed.slice(0, 10).map((f) => (
                <li key={f.id}>{`${f.id}: ${f.message}`}</li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
