import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ApiError } from "../api/client";
import type { LiveSat } from "../api/reducer";
import { checkElements } from "../elements";
import { utcDateTime } from "../format";
import { href } from "../route";
import { api, live } from "../services";
import { ELEMENTS_FILES, TextFileInput } from "./TextFileInput";

const HISTORY_WAIT_S = 15;

/** A satellite's orbit and its management: the TLE it flies and the ones before it, new
 * elements pasted or uploaded (TLE or OMM; flown from the actor's next tick), and deletion
 * after a confirmation. */
export function SatManage({ sat, canOperate }: { sat: LiveSat; canOperate: boolean }) {
  const queryClient = useQueryClient();
  const [text, setText] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const history = useQuery({ queryKey: ["tle-history", sat.id], queryFn: () => api.tleHistory(sat.id), staleTime: 60_000 });
  // The history is the database's: the store writes the new elements just after the actor flies
  // them (the PUT returns then), so one reload may come too early. Reload each second until the
  // history has grown, for at most HISTORY_WAIT_S.
  const reloadHistoryUntilGrown = async (before: number) => {
    for (let i = 0; i < HISTORY_WAIT_S; i += 1) {
      const entries = await queryClient.fetchQuery({ queryKey: ["tle-history", sat.id], queryFn: () => api.tleHistory(sat.id), staleTime: 0 });
      if (entries.length > before) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  const failure = (cause: unknown) => setMessage({ text: cause instanceof ApiError ? `${cause.code}: ${cause.message}` : String(cause), error: true });

  const update = useMutation({
    mutationFn: () => api.setTle(sat.id, { elements: text }),
    onSuccess: async () => {
      setText("");
      setMessage({ text: "new elements: flown from the next tick", error: false });
      void reloadHistoryUntilGrown(history.data?.length ?? 0).catch(() => undefined);
      void queryClient.invalidateQueries({ queryKey: ["passes"] });
      await live.reloadAll();
    },
    onError: failure,
  });
  const remove = useMutation({
    mutationFn: () => api.deleteSatellite(sat.id),
    onSuccess: async () => {
      await live.reloadAll();
      window.location.hash = href({ view: "satellites" });
    },
    onError: failure,
  });

  const check = text.trim() ? checkElements(text) : null;
  return (
    <div className="panel" data-testid="sat-manage">
      <h3>Orbit</h3>
      {sat.tle ? (
        <pre className="mono tle" data-testid="current-tle">
          {sat.tle.line1}
          {"\n"}
          {sat.tle.line2}
        </pre>
      ) : (
        <p className="muted">no orbit (no TLE)</p>
      )}
      {canOperate ? (
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            if (check && !check.ok) setMessage({ text: check.message, error: true });
            else if (check) update.mutate();
          }}
        >
          <label>
            new elements: a TLE or an OMM (JSON or KVN)
            <textarea className="mono" rows={4} cols={72} spellCheck={false} value={text} onChange={(e) => setText(e.target.value)} aria-label="new elements" />
          </label>
          <div className="row">
            <TextFileInput accept={ELEMENTS_FILES} label="new elements file" onText={setText} />
            {check ? <span className={check.ok ? "ok" : "error"}>{check.ok ? `${check.format}${check.name ? `: ${check.name}` : ""}` : check.message}</span> : null}
            <button type="submit" disabled={!check?.ok || update.isPending}>
              Update TLE
            </button>
          </div>
        </form>
      ) : null}
      {history.data?.length ? (
        <details data-testid="tle-history">
          <summary>{history.data.length} element set(s) flown</summary>
          <table className="grid compact">
            <thead>
              <tr>
                <th>from (UTC)</th>
                <th>to (UTC)</th>
                <th>lines</th>
              </tr>
            </thead>
            <tbody>
              {history.data.map((t) => (
                <tr key={t.valid_from + t.line2}>
                  <td>{utcDateTime(Date.parse(t.valid_from))}</td>
                  <td>{t.valid_to ? utcDateTime(Date.parse(t.valid_to)) : "current"}</td>
                  <td className="mono">
                    {t.line1}
                    <br />
                    {t.line2}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      ) : null}
      {canOperate ? (
        confirming ? (
          <p className="row" role="alert">
            Delete {sat.id}? Its actor stops; its history stays.{" "}
            <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
              Yes, delete {sat.id}
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Keep it
            </button>
          </p>
        ) : (
          <p>
            <button type="button" onClick={() => setConfirming(true)}>
              Delete satellite
            </button>
          </p>
        )
      ) : null}
      {message ? (
        <p className={message.error ? "error" : "ok"} role="status" data-testid="manage-message">
          {message.text}
        </p>
      ) : null}
    </div>
  );
}
