// What the gateway says about its dependencies (GET /readyz), as the banner shows it.

import { ApiError } from "./api/client";
import type { ApiClient } from "./api/client";

/** GET /readyz: both true when ready; on a 503 which one is missing, and why. */
export interface Readiness {
  cluster: boolean;
  database: boolean;
  databaseReason: string | null;
}

export const READY: Readiness = { cluster: true, database: true, databaseReason: null };

/** The readiness a /readyz answer (or its ApiError) means; null when it says nothing (a network
 * failure: the connection badge already shows that). */
export function readinessFrom(answer: unknown): Readiness | null {
  if (!(answer instanceof ApiError)) return READY;
  if (answer.status !== 503 || answer.details === null) return null;
  const details = answer.details;
  return {
    cluster: details.cluster !== false,
    database: details.database !== false,
    databaseReason: typeof details.database_reason === "string" ? details.database_reason : null,
  };
}

/** GET /readyz through ``client``. */
export async function fetchReadiness(client: ApiClient): Promise<Readiness | null> {
  try {
    await client.request("GET", "/readyz");
    return READY;
  } catch (cause) {
    return readinessFrom(cause);
  }
}

/** The banner's text, or null when there is nothing to say. What still works is named, so an
 * empty list or a pending computation is not taken for the truth. */
export function outageText(readiness: Readiness | null): string | null {
  if (readiness === null) return null;
  const parts: string[] = [];
  if (!readiness.database) {
    parts.push(
      "Database unavailable: history, alarms, passes, ground stations and commands are refused until it is back " +
        "(retrying). Live positions and events go on." +
        (readiness.databaseReason ? ` (${readiness.databaseReason})` : ""),
    );
  }
  if (!readiness.cluster) parts.push("Control node unreachable: satellites and commands are unavailable (retrying).");
  return parts.length ? parts.join(" ") : null;
}

/** An answer refused because the database is away (shown by the banner; not worth retrying at once). */
export function isDatabaseOutage(error: unknown): boolean {
  return error instanceof ApiError && error.status === 503 && error.code === "database_unavailable";
}
