// Alarms and limits through TanStack Query, refetched when an alarm event arrives.

import { useQuery } from "@tanstack/react-query";
import { useEffect } from "react";
import { listAlarms, listLimits } from "./api/alarms";
import type { AlarmFilter } from "./api/alarms";
import { ALARM_RECHECK_MS } from "./queries";
import { api, queryClient } from "./services";
import { useDashboard } from "./store";

/** Alarms matching ``filter`` (default: every open one), fetched again on each alarm event
 * (and once more a moment later, for a transition whose row was not written yet). */
export function useAlarmList(filter: AlarmFilter = {}) {
  const revision = useDashboard((s) => s.live.alarmsRevision);
  useEffect(() => {
    if (revision === 0) return;
    void queryClient.invalidateQueries({ queryKey: ["alarms"] });
    const timer = setTimeout(() => void queryClient.invalidateQueries({ queryKey: ["alarms"] }), ALARM_RECHECK_MS);
    return () => clearTimeout(timer);
  }, [revision]);
  return useQuery({
    queryKey: ["alarms", "list", filter.states ?? [], filter.severities ?? [], filter.satId ?? ""],
    queryFn: () => listAlarms(api, filter),
    refetchInterval: 30_000,
  });
}

export function useLimits() {
  return useQuery({ queryKey: ["limits"], queryFn: () => listLimits(api), staleTime: 30_000 });
}
