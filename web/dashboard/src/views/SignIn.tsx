import { useState } from "react";
import type { FormEvent } from "react";
import { ApiClient, ApiError } from "../api/client";
import { useDashboard } from "../store";

/** Token entry. The token is checked against GET /api/session before it is kept (in session
 * storage: it goes when the tab closes). */
export function SignIn({ reason }: { reason: string | null }) {
  const setToken = useDashboard((s) => s.setToken);
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const token = value.trim();
    if (!token) return;
    setBusy(true);
    setError(null);
    try {
      await new ApiClient("", token).session();
      setToken(token);
      window.location.hash = "#/map";
    } catch (cause) {
      setError(cause instanceof ApiError ? cause.message : String(cause));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel signin">
      <h2>Sign in</h2>
      {reason ? <p className="error">{reason}</p> : null}
      <p>
        Paste an API token. <code>stellarops up</code> prints the admin token once (it is kept in{" "}
        <code>$STELLAROPS_HOME/admin-token</code>); more with <code>stellarops token create --role viewer|operator|admin</code>.
      </p>
      <form onSubmit={(e) => void submit(e)}>
        <input
          type="password"
          autoComplete="off"
          placeholder="sto_…"
          aria-label="API token"
          name="token"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" disabled={busy || !value.trim()}>
          Sign in
        </button>
      </form>
      {error ? <p className="error" role="alert">{error}</p> : null}
    </section>
  );
}
