import { useDashboard } from "../store";

export function TokenControl() {
  const token = useDashboard((s) => s.token);
  const role = useDashboard((s) => s.role);
  const anonymous = useDashboard((s) => s.anonymous);
  const setToken = useDashboard((s) => s.setToken);
  return (
    <span className="session" data-testid="session">
      {role ? <span className={`role role-${role}`}>{anonymous ? "viewer (anonymous)" : role}</span> : null}
      {token ? (
        <button type="button" className="link" onClick={() => setToken(null)}>
          sign out
        </button>
      ) : (
        <a href="#/signin">sign in</a>
      )}
    </span>
  );
}
