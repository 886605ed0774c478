import { useQuery } from "@tanstack/react-query";
import { fetchReadiness, outageText } from "../outage";
import { api } from "../services";

/** Polled, not inferred from other answers: it also clears by itself when the database is back. */
export const READINESS_POLL_MS = 3000;

export function OutageBanner() {
  const readiness = useQuery({
    queryKey: ["readiness"],
    queryFn: () => fetchReadiness(api),
    refetchInterval: READINESS_POLL_MS,
    retry: false,
  });
  const text = outageText(readiness.data ?? null);
  if (!text) return null;
  return (
    <div className="outage" role="alert" data-testid="outage-banner">
      {text}
    </div>
  );
}
