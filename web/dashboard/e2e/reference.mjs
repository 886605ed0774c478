// The bare reference page of bench.mjs and profile.mjs.

// The reference: what the map needs at the least. A fetch stream of /api/events parsed by hand,
// the latest position per satellite, 1,000 dots on a 1400x700 canvas at each 250 ms batch.
export function referenceHtml(token) {
  return `<!doctype html><meta charset="utf-8"><title>reference</title>
<canvas id="c" width="1400" height="700"></canvas>
<script>
const canvas = document.getElementById("c");
const ctx = canvas.getContext("2d");
const positions = new Map();
let dirty = false;
window.__events = 0;
setInterval(() => {
  if (!dirty) return;
  dirty = false;
  ctx.fillStyle = "#0d2236";
  ctx.fillRect(0, 0, 1400, 700);
  ctx.fillStyle = "#4fc3f7";
  for (const [lon, lat] of positions.values()) ctx.fillRect(((lon + 180) / 360) * 1400 - 2.5, ((90 - lat) / 180) * 700 - 2.5, 5, 5);
  canvas.dataset.drawnSats = String(positions.size);
  canvas.dataset.draws = String(Number(canvas.dataset.draws ?? 0) + 1);
}, 250);
(async () => {
  const response = await fetch("/api/events", { headers: { Accept: "text/event-stream", Authorization: "Bearer ${token}" } });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const at = frame.indexOf("\\ndata: ");
      if (at < 0) continue;
      const event = JSON.parse(frame.slice(at + 7));
      if (event.type !== "telemetry" || event.data.lat_deg == null) continue;
      positions.set(event.sat_id, [event.data.lon_deg, event.data.lat_deg]);
      window.__events += 1;
      dirty = true;
    }
  }
})();
</script>`;
}
