// The one API client and live controller of the page, and the shared query client.

import { QueryClient } from "@tanstack/react-query";
import { ApiClient, ApiError } from "./api/client";
import { LiveController } from "./live";
import { isDatabaseOutage } from "./outage";
import { useDashboard } from "./store";

export const api = new ApiClient("", useDashboard.getState().token);
export const live = new LiveController(api);

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 10_000,
      refetchOnWindowFocus: false,
      // 4xx answers will not change by asking again; a database outage is shown by the banner
      // at once (not as a computation still pending) and the next refetch tries again.
      retry: (failures, error) =>
        !(error instanceof ApiError && error.status >= 400 && error.status < 500) && !isDatabaseOutage(error) && failures < 3,
    },
  },
});

/** Take a token from the address bar (#token=...) once: into session storage, out of the URL. */
export function adoptTokenFromUrl(): void {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (!match?.[1]) return;
  useDashboard.getState().setToken(decodeURIComponent(match[1]));
  history.replaceState(null, "", `${window.location.pathname}${window.location.search}#/map`);
}

useDashboard.subscribe((state, previous) => {
  if (state.token === previous.token) return;
  api.setToken(state.token);
  queryClient.clear();
  live.restart();
});
