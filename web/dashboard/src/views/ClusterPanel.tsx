import { useDashboard } from "../store";

const ROLE_ORDER = ["beam", "gateway", "store", "orbital", "sats"];

export function ClusterPanel() {
  const nodes = useDashboard((s) => s.live.nodes);
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
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
