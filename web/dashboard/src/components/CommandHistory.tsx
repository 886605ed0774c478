import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { ApiError } from "../api/client";
import type { CommandFilter } from "../api/client";
import { COMMAND_KINDS, COMMAND_STATUSES } from "../api/types";
import { save } from "../download";
import { outcome, utcDateTime } from "../format";
import { href } from "../route";
import { fromInputUtc } from "../series";
import { api } from "../services";

const PAGE = 50;

function describe(cause: unknown): string {
  return cause instanceof ApiError ? `${cause.code}: ${cause.message}` : String(cause);
}

/** The command history, the fleet's or one satellite's: filters (satellite, kind, status, who,
 * submitted between), newest first a page at a time ("older" follows the server's cursor), and
 * the same filters exported as CSV. */
export function CommandHistory({ satId: initialSat = "" }: { satId?: string }) {
  const [draft, setDraft] = useState({ sat: initialSat, kind: "", status: "", who: "", from: "", to: "" });
  const [filter, setFilter] = useState<CommandFilter>(() => (initialSat ? { satId: initialSat } : {}));
  const [problem, setProblem] = useState<string | null>(null);
  const [exported, setExported] = useState<{ text: string; error: boolean } | null>(null);

  const pages = useInfiniteQuery({
    queryKey: ["command-history", filter],
    queryFn: ({ pageParam }) => api.commandHistory(filter, pageParam, PAGE),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next ?? undefined,
  });
  const exportMutation = useMutation({
    mutationFn: () => api.exportCommands(filter),
    onSuccess: (download) => {
      save(download);
      setExported({ text: `saved ${download.filename} (${Math.ceil(download.blob.size / 1024)} KiB)`, error: false });
    },
    onError: (cause) => setExported({ text: describe(cause), error: true }),
  });

  const apply = () => {
    const from = draft.from ? fromInputUtc(draft.from) : null;
    const to = draft.to ? fromInputUtc(draft.to) : null;
    if (Number.isNaN(from) || Number.isNaN(to)) return setProblem("times as YYYY-MM-DDTHH:MM (UTC)");
    if (from !== null && to !== null && from >= to) return setProblem("from must be before to");
    if (draft.sat && !/^[A-Za-z0-9_.-]{1,64}$/.test(draft.sat)) return setProblem("a satellite id is 1-64 letters, digits, _ . -");
    setProblem(null);
    setFilter({
      satId: draft.sat || undefined,
      kinds: draft.kind ? [draft.kind] : undefined,
      statuses: draft.status ? [draft.status] : undefined,
      submittedBy: draft.who || undefined,
      from: from === null ? undefined : new Date(from),
      to: to === null ? undefined : new Date(to),
    });
  };

  const commands = pages.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="panel" data-testid="command-history">
      <div className="toolbar">
        <h3>Command history</h3>
        <div className="spacer" />
        <button type="button" onClick={() => exportMutation.mutate()} disabled={exportMutation.isPending} data-testid="export-commands">
          {exportMutation.isPending ? "Exporting…" : "Export CSV"}
        </button>
      </div>
      <form
        className="row filters"
        onSubmit={(e) => {
          e.preventDefault();
          apply();
        }}
      >
        <input placeholder="satellite (all)" value={draft.sat} onChange={(e) => setDraft({ ...draft, sat: e.target.value.trim() })} aria-label="satellite" />
        <select value={draft.kind} onChange={(e) => setDraft({ ...draft, kind: e.target.value })} aria-label="kind">
          <option value="">any kind</option>
          {COMMAND_KINDS.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
        <select value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.target.value })} aria-label="status">
          <option value="">any status</option>
          {COMMAND_STATUSES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <input placeholder="submitted by" value={draft.who} onChange={(e) => setDraft({ ...draft, who: e.target.value })} aria-label="submitted by" />
        <label>
          from (UTC) <input type="datetime-local" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.target.value })} aria-label="submitted from (UTC)" />
        </label>
        <label>
          to (UTC) <input type="datetime-local" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.target.value })} aria-label="submitted to (UTC)" />
        </label>
        <button type="submit">Filter</button>
        {problem ? <span className="error">{problem}</span> : null}
      </form>
      {exported ? (
        <p className={exported.error ? "error" : "ok"} role="status" data-testid="export-commands-message">
          {exported.text}
        </p>
      ) : null}
      <table className="grid compact">
        <thead>
          <tr>
            <th>submitted (UTC)</th>
            <th>satellite</th>
            <th>kind</th>
            <th>args</th>
            <th>status</th>
            <th>result</th>
            <th>by</th>
            <th>attempts</th>
          </tr>
        </thead>
        <tbody>
          {commands.map((c) => (
            <tr key={c.id} data-command={c.id}>
              <td title={c.id}>{utcDateTime(Date.parse(c.created_at))}</td>
              <td>
                <a href={href({ view: "satellite", satId: c.satellite_id })}>{c.satellite_id}</a>
              </td>
              <td>{c.kind}</td>
              <td>{Object.keys(c.args).length ? JSON.stringify(c.args) : ""}</td>
              <td className={`status status-${c.status}`}>{c.status}</td>
              <td>{c.result === undefined || c.result === null ? "" : outcome(c.result)}</td>
              <td>{c.submitted_by ?? ""}</td>
              <td className="num">{c.attempts}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {pages.error ? <p className="error">{describe(pages.error)}</p> : null}
      {pages.isLoading ? <p className="muted">loading…</p> : !commands.length && !pages.error ? <p className="muted">no command matches</p> : null}
      {pages.hasNextPage ? (
        <button type="button" onClick={() => void pages.fetchNextPage()} disabled={pages.isFetchingNextPage} data-testid="older-commands">
          {pages.isFetchingNextPage ? "loading…" : `older (${commands.length} shown)`}
        </button>
      ) : null}
    </section>
  );
}
