// Server data that is not part of the live stream, through TanStack Query (cached, refetched).

import { useQuery } from "@tanstack/react-query";
import { useEffect } from "react";
import { api, queryClient } from "./services";
import { useDashboard } from "./store";

export const PASS_HORIZON_H = 12;

/** Passes of every satellite over every station, now to PASS_HORIZON_H ahead (refreshed every
 * 5 minutes; the orbital node computes them). */
export function useUpcomingPasses() {
  return useQuery({
    queryKey: ["passes", "all"],
    queryFn: () => {
      const from = new Date();
      return api.passes({ from, to: new Date(from.getTime() + PASS_HORIZON_H * 3_600_000) });
    },
    staleTime: 300_000,
    refetchInterval: 300_000,
  });
}

export function useStations() {
  return useQuery({ queryKey: ["stations"], queryFn: () => api.stations(), staleTime: 300_000 });
}

/** The store node writes a raised alarm shortly after its event: look again after this long. */
export const ALARM_RECHECK_MS = 1500;

/** Active alarms, fetched again whenever an alarm event arrives (and once more a moment later,
 * for a raise whose row was not written yet). */
export function useAlarms() {
  const revision = useDashboard((s) => s.live.alarmsRevision);
  useEffect(() => {
    if (revision === 0) return;
    void queryClient.invalidateQueries({ queryKey: ["alarms"] });
    const timer = setTimeout(() => void queryClient.invalidateQueries({ queryKey: ["alarms"] }), ALARM_RECHECK_MS);
    return () => clearTimeout(timer);
  }, [revision]);
  return useQuery({ queryKey: ["alarms"], queryFn: () => api.alarms(), refetchInterval: 60_000 });
}
