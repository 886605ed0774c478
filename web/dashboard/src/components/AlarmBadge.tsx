import { worstBySatellite } from "../api/alarms";
import { useAlarmList } from "../alarmQueries";
import { href } from "../route";

/** The header's alarm badge: open alarms that need attention (shelved ones aside), coloured by
 * the worst severity; a link to the alarm list. */
export function AlarmBadge() {
  const alarms = useAlarmList();
  const items = (alarms.data ?? []).filter((a) => a.state !== "shelved");
  const unacknowledged = items.filter((a) => a.state === "unacknowledged").length;
  const worst = items.some((a) => a.severity === "critical") ? "critical" : items.some((a) => a.severity === "warning") ? "warning" : items.length ? "info" : "none";
  const satellites = worstBySatellite(items).size;
  const title = alarms.error
    ? "alarms not loaded"
    : `${items.length} open alarm(s) on ${satellites} satellite(s), ${unacknowledged} unacknowledged`;
  return (
    <a className={`alarm-badge alarm-badge-${worst}`} href={href({ view: "alarms" })} data-testid="alarm-badge" data-count={items.length} data-unacknowledged={unacknowledged} data-worst={worst} title={title}>
      {alarms.error ? "alarms ?" : items.length ? `⚠ ${items.length}${unacknowledged ? ` (${unacknowledged} new)` : ""}` : "no alarm"}
    </a>
  );
}
