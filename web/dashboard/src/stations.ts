// The ground-station form: text fields checked and turned into the body of POST or PUT
// /api/ground-stations (the gateway checks again and names the field it refuses).

import type { GroundStation, StationFields } from "./api/types";

export interface StationForm {
  id: string;
  name: string;
  lat: string;
  lon: string;
  altM: string;
  minElDeg: string;
  downlinkMbps: string;
  antennas: string;
}

export const EMPTY_STATION: StationForm = { id: "", name: "", lat: "", lon: "", altM: "0", minElDeg: "5", downlinkMbps: "100", antennas: "1" };
const STATION_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** A stored station as the form shows it (to edit it). */
export function formOf(s: GroundStation): StationForm {
  return {
    id: s.id, name: s.name, lat: String(s.lat_deg), lon: String(s.lon_deg), altM: String(s.alt_m),
    minElDeg: String(s.min_el_deg), downlinkMbps: String(s.downlink_mbps), antennas: String(s.antennas),
  }; // prettier-ignore
}

function number(text: string, low: number, high: number, opts: { lowOpen?: boolean; highOpen?: boolean; integer?: boolean } = {}): number | null {
  if (!text.trim()) return null;
  const value = Number(text);
  if (!Number.isFinite(value) || (opts.integer && !Number.isInteger(value))) return null;
  if (opts.lowOpen ? value <= low : value < low) return null;
  if (opts.highOpen ? value >= high : value > high) return null;
  return value;
}

/** Problems by form field; empty when the form may be sent. ``creating``: the id is checked too. */
export function checkStationForm(form: StationForm, creating: boolean): Record<string, string> {
  const problems: Record<string, string> = {};
  if (creating && !STATION_ID.test(form.id)) problems.id = "lowercase: a-z 0-9 _ -, up to 64";
  if (!form.name.trim() || form.name.length > 128) problems.name = "1 to 128 characters";
  if (number(form.lat, -90, 90) === null) problems.lat = "-90 to 90°";
  if (number(form.lon, -180, 180) === null) problems.lon = "-180 to 180°";
  if (number(form.altM, -500, 9000) === null) problems.altM = "-500 to 9,000 m";
  if (number(form.minElDeg, 0, 90, { highOpen: true }) === null) problems.minElDeg = "0 to below 90°";
  if (number(form.downlinkMbps, 0, 1e9, { lowOpen: true }) === null) problems.downlinkMbps = "above 0 Mbit/s";
  if (number(form.antennas, 1, 16, { integer: true }) === null) problems.antennas = "1 to 16";
  return problems;
}

/** The fields PUT replaces (and POST takes with the id), from a checked form; ``keep``: the
 * stored station, whose availability (active, down windows) an edit keeps. */
export function stationFields(form: StationForm, keep?: GroundStation): StationFields {
  return {
    name: form.name.trim(), lat_deg: Number(form.lat), lon_deg: Number(form.lon), alt_m: Number(form.altM),
    min_el_deg: Number(form.minElDeg), downlink_mbps: Number(form.downlinkMbps), antennas: Number(form.antennas),
    ...(keep ? { active: keep.active, unavailable: keep.unavailable } : {}),
  }; // prettier-ignore
}
