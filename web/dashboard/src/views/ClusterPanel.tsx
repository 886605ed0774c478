import { utcDateTime } from "../format";
import { useDashboard } from "../store";

const ROLE_ORDER = ["beam", "gateway", "store", "orbital", "sats"];

export function ClusterPanel() {
  const nodes = useDashboard((s) => s.live.nodes);
  const log = useDashboard((s) => s.live.nodeLog);
  const list = Object.values(nodes).sort(
    (a, b) => (ROLE_ORDER.indexOf(a.role) + 1 || 99) - (ROLE_ORDER.indexOf(b.role) + 1 || 99) || a.name.localeCompare(b.name),
  );
  const up = list.filter((n) => n.status === "up").length;
  return (
    <section className="panel">
      <div className="toolbar">
        <h2>Cluster</h2>
        <span className="muted">
          {up} of {list.length} nodes up
        </span>
      </div>
      <table className="grid" data-testid="nodes">
        <thead>
          <tr>
            <th>node</th>
            <th>role</th>
            <th>status</th>
            <th>restarts</th>
            <th>OS pid</th>
            <th>satellites</th>
            <th>supervised by</th>
            <th title="BEAM nodes: joins and leaves of the cluster seen by the gateway's BEAM node">joins / leaves</th>
          </tr>
        </thead>
        <tbody>
          {list.map((n) => (
            <tr key={n.name} data-node={n.name}>
              <td className="mono">{n.name}</td>
              <td>{n.role}</td>
              <td>
                <span className={`node-status node-${n.status}`} data-testid="node-status">
                  {n.status}
                </span>
              </td>
              <td className="num">{n.restarts ?? "—"}</td>
              <td className="num">{n.os_pid ?? "—"}</td>
              <td className="num">{n.satellites ?? "—"}</td>
              <td className="mono">{n.role === "beam" ? "—" : (n.beam ?? "—")}</td>
              <td className="num" data-testid="node-joins-leaves">
                {n.role === "beam" && n.joins !== undefined ? `${n.joins} / ${n.leaves ?? 0}` : "—"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3 className="spaced">Node events</h3>
      <table className="grid compact" data-testid="node-log">
        <thead>
          <tr>
            <th>time (UTC)</th>
            <th>node</th>
            <th>role</th>
            <th>status</th>
            <th>restarts</th>
          </tr>
        </thead>
        <tbody>
          {log.map((c) => (
            <tr key={c.event_id} data-node={c.name} data-status={c.status}>
              <td>{utcDateTime(Date.parse(c.at))}</td>
              <td className="mono">{c.name}</td>
              <td>{c.role}</td>
              <td>
                <span className={`node-status node-${c.status}`}>{c.status}</span>
              </td>
              <td className="num">{c.restarts ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!log.length ? <p className="muted">No node has changed since this page opened.</p> : null}
    </section>
  );
}
