import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ApiError } from "../api/client";
import type { GroundStation } from "../api/types";
import { useStations } from "../queries";
import { api } from "../services";
import { EMPTY_STATION, checkStationForm, formOf, stationFields } from "../stations";
import type { StationForm } from "../stations";
import { allows, useDashboard } from "../store";

const INPUTS: { key: keyof StationForm; label: string; size: number }[] = [
  { key: "name", label: "name", size: 16 },
  { key: "lat", label: "lat °", size: 8 },
  { key: "lon", label: "lon °", size: 8 },
  { key: "altM", label: "alt m", size: 6 },
  { key: "minElDeg", label: "mask °", size: 4 },
  { key: "downlinkMbps", label: "downlink Mbit/s", size: 6 },
  { key: "antennas", label: "antennas", size: 3 },
];
// The gateway's field names as the form's.
const FIELD_OF: Record<string, keyof StationForm> = {
  id: "id", name: "name", lat_deg: "lat", lon_deg: "lon", alt_m: "altM", min_el_deg: "minElDeg", downlink_mbps: "downlinkMbps",
  antennas: "antennas",
}; // prettier-ignore

/** The ground stations (the database's: what passes and the scheduler use): list, create, edit,
 * take down and bring back, delete (after a confirmation). */
export function StationsPanel() {
  const role = useDashboard((s) => s.role);
  const stations = useStations();
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<string | null>(null); // a station id, or "" for a new one
  const [form, setForm] = useState<StationForm>(EMPTY_STATION);
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [confirming, setConfirming] = useState<string | null>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const canOperate = allows(role, "operator");

  const done = (text: string) => {
    setMessage({ text, error: false });
    void queryClient.invalidateQueries({ queryKey: ["stations"] });
    void queryClient.invalidateQueries({ queryKey: ["passes"] });
  };
  const failure = (cause: unknown) => {
    if (cause instanceof ApiError) {
      const mine = FIELD_OF[String(cause.details?.field ?? "")];
      if (mine) setProblems({ [mine]: cause.message });
      setMessage({ text: `${cause.code}: ${cause.message}`, error: true });
    } else setMessage({ text: String(cause), error: true });
  };

  const save = useMutation({
    mutationFn: async (): Promise<string> => {
      if (editing === "") {
        await api.createStation({ id: form.id, ...stationFields(form) });
        return `created ${form.id}`;
      }
      const stored = stations.data?.find((s) => s.id === editing);
      const edited = await api.putStation(editing ?? "", stationFields(form, stored));
      return `saved ${edited.station.id}${edited.request_id !== null ? ": the scheduler re-plans" : ""}`;
    },
    onSuccess: (text) => {
      setEditing(null);
      done(text);
    },
    onError: failure,
  });
  const toggle = useMutation({
    mutationFn: (s: GroundStation) => api.setStationActive(s.id, !s.active),
    onSuccess: (r) => done(`${r.id} ${r.active ? "is back up" : "is down"}`),
    onError: failure,
  });
  const remove = useMutation({
    mutationFn: (id: string) => api.deleteStation(id),
    onSuccess: (_, id) => {
      setConfirming(null);
      done(`deleted ${id}`);
    },
    onError: failure,
  });

  const open = (id: string, initial: StationForm) => {
    setEditing(id);
    setForm(initial);
    setProblems({});
    setMessage(null);
  };
  const editor = (
    <form
      className="row wrap"
      data-testid="station-form"
      onSubmit={(e) => {
        e.preventDefault();
        const found = checkStationForm(form, editing === "");
        setProblems(found);
        if (Object.keys(found).length) setMessage({ text: `check: ${Object.keys(found).join(", ")}`, error: true });
        else save.mutate();
      }}
    >
      {editing === "" ? (
        <label className={problems.id ? "invalid" : ""}>
          id <input value={form.id} size={12} aria-label="station id" onChange={(e) => setForm({ ...form, id: e.target.value })} />
        </label>
      ) : (
        <strong>{editing}</strong>
      )}
      {INPUTS.map(({ key, label, size }) => (
        <label key={key} className={problems[key] ? "invalid" : ""} title={problems[key]}>
          {label} <input value={form[key]} size={size} aria-label={`station ${label}`} onChange={(e) => setForm({ ...form, [key]: e.target.value })} />
        </label>
      ))}
      <button type="submit" disabled={save.isPending}>
        {editing === "" ? "Create" : "Save"}
      </button>
      <button type="button" onClick={() => setEditing(null)}>
        Cancel
      </button>
    </form>
  );

  return (
    <section className="panel" data-testid="stations">
      <div className="toolbar">
        <h2>Ground stations</h2>
        <span className="muted">where passes are computed and downlinks planned</span>
        {canOperate && editing !== "" ? (
          <button type="button" onClick={() => open("", EMPTY_STATION)}>
            New station
          </button>
        ) : null}
      </div>
      {editing === "" ? editor : null}
      <table className="grid compact" data-testid="station-list">
        <thead>
          <tr>
            <th>id</th>
            <th>name</th>
            <th>lat</th>
            <th>lon</th>
            <th>alt</th>
            <th>mask</th>
            <th>downlink</th>
            <th>antennas</th>
            <th>state</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(stations.data ?? []).map((s) =>
            editing === s.id ? (
              <tr key={s.id} data-station={s.id}>
                <td colSpan={10}>{editor}</td>
              </tr>
            ) : (
              <tr key={s.id} data-station={s.id} data-active={String(s.active)}>
                <td className="mono">{s.id}</td>
                <td>{s.name}</td>
                <td className="num">{s.lat_deg.toFixed(4)}°</td>
                <td className="num">{s.lon_deg.toFixed(4)}°</td>
                <td className="num">{s.alt_m} m</td>
                <td className="num" data-testid="station-mask">
                  {s.min_el_deg}°
                </td>
                <td className="num">{s.downlink_mbps} Mbit/s</td>
                <td className="num">{s.antennas}</td>
                <td className={s.active ? "ok" : "error"}>{s.active ? (s.unavailable.length ? `up (${s.unavailable.length} down windows)` : "up") : "down"}</td>
                <td>
                  {!canOperate ? null : confirming === s.id ? (
                    <span className="row" role="alert">
                      delete {s.id}?{" "}
                      <button type="button" className="danger" onClick={() => remove.mutate(s.id)} disabled={remove.isPending}>
                        Yes, delete
                      </button>
                      <button type="button" onClick={() => setConfirming(null)}>
                        Keep
                      </button>
                    </span>
                  ) : (
                    <span className="row">
                      <button type="button" onClick={() => open(s.id, formOf(s))}>
                        Edit
                      </button>
                      <button type="button" onClick={() => toggle.mutate(s)} disabled={toggle.isPending}>
                        {s.active ? "Take down" : "Bring back"}
                      </button>
                      <button type="button" onClick={() => setConfirming(s.id)}>
                        Delete
                      </button>
                    </span>
                  )}
                </td>
              </tr>
            ),
          )}
        </tbody>
      </table>
      {stations.error ? <p className="error">{String(stations.error.message)}</p> : null}
      {!canOperate ? <p className="muted">Changing stations needs the operator role.</p> : null}
      {message ? (
        <p className={message.error ? "error" : "ok"} role="status" data-testid="station-message">
          {message.text}
        </p>
      ) : null}
    </section>
  );
}
