// Alarms and limits over the HTTP API (GET /api/alarms..., /api/limits...): types and calls.

import type { ApiClient } from "./client";
import type { Items } from "./types";

export const ALARM_STATES = ["unacknowledged", "acknowledged", "shelved", "cleared"] as const;
export type AlarmState = (typeof ALARM_STATES)[number];
export const SEVERITIES = ["info", "warning", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];
export const LIMIT_PARAMETERS = ["energy_pct", "memory_used_pct", "memory_used_mb", "alt_km"] as const;
export type LimitParameter = (typeof LIMIT_PARAMETERS)[number];

export interface AlarmRecord {
  id: number;
  satellite_id: string;
  kind: string;
  severity: Severity;
  message: string;
  raised_at: string;
  state: AlarmState;
  active: boolean; // the value is still out of limits
  latched?: boolean;
  value?: number | null;
  acknowledged_at?: string | null;
  acknowledged_by?: string | null;
  comment?: string | null;
  shelved_until?: string | null;
  shelved_by?: string | null;
  cleared_at?: string | null;
  cleared_by?: string | null;
}

export interface AlarmTransition {
  id: number;
  at: string;
  transition: string;
  state: AlarmState;
  severity: Severity;
  active: boolean;
  actor: string;
  comment: string;
  value?: number | null;
}

export interface LimitBody {
  warning_low?: number | null;
  warning_high?: number | null;
  critical_low?: number | null;
  critical_high?: number | null;
  hysteresis?: number;
  persistence?: number;
  latched?: boolean;
}

export interface Limit extends LimitBody {
  parameter: LimitParameter;
  satellite_id: string | null; // null: fleet-wide
  updated_at: string;
  updated_by: string;
}

export interface AlarmFilter {
  states?: readonly string[];
  severities?: readonly string[];
  satId?: string;
}

function limitPath(parameter: string, satId?: string | null): string {
  const p = encodeURIComponent(parameter);
  return satId ? `/api/satellites/${encodeURIComponent(satId)}/limits/${p}` : `/api/limits/${p}`;
}

export async function listAlarms(api: ApiClient, filter: AlarmFilter = {}): Promise<AlarmRecord[]> {
  const query = {
    state: filter.states?.length ? [...filter.states] : undefined,
    severity: filter.severities?.length ? [...filter.severities] : undefined,
    sat: filter.satId,
  };
  return (await api.request<Items<AlarmRecord>>("GET", "/api/alarms", { query })).items;
}

export function acknowledgeAlarm(api: ApiClient, id: number, comment = ""): Promise<AlarmRecord> {
  return api.request("POST", `/api/alarms/${id}/acknowledge`, { body: { comment } });
}

export function shelveAlarm(api: ApiClient, id: number, durationS: number, comment = ""): Promise<AlarmRecord> {
  return api.request("POST", `/api/alarms/${id}/shelve`, { body: { duration_s: durationS, comment } });
}

export function unshelveAlarm(api: ApiClient, id: number): Promise<AlarmRecord> {
  return api.request("POST", `/api/alarms/${id}/unshelve`, { body: {} });
}

export function clearAlarm(api: ApiClient, id: number): Promise<AlarmRecord> {
  return api.request("POST", `/api/alarms/${id}/clear`);
}

export async function alarmHistory(api: ApiClient, id: number): Promise<AlarmTransition[]> {
  return (await api.request<Items<AlarmTransition>>("GET", `/api/alarms/${id}/history`)).items;
}

export async function listLimits(api: ApiClient): Promise<Limit[]> {
  return (await api.request<Items<Limit>>("GET", "/api/limits")).items;
}

export function putLimit(api: ApiClient, parameter: string, body: LimitBody, satId?: string | null): Promise<Limit> {
  return api.request("PUT", limitPath(parameter, satId), { body });
}

export function deleteLimit(api: ApiClient, parameter: string, satId?: string | null): Promise<void> {
  return api.request("DELETE", limitPath(parameter, satId));
}

/** The worst open alarm of each satellite (shelved ones left out: the operator set them aside). */
export function worstBySatellite(alarms: readonly AlarmRecord[]): Map<string, Severity> {
  const rank: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };
  const worst = new Map<string, Severity>();
  for (const a of alarms) {
    if (a.state === "cleared" || a.state === "shelved") continue;
    const seen = worst.get(a.satellite_id);
    if (seen === undefined || rank[a.severity] > rank[seen]) worst.set(a.satellite_id, a.severity);
  }
  return worst;
}
