// Hash routes (#/map, #/sat/demo-01...): the gateway serves one page and needs no route table.

import { useSyncExternalStore } from "react";

export type Route =
  | { view: "map"; satId: string | null }
  | { view: "satellites" }
  | { view: "satellite"; satId: string }
  | { view: "newsat" }
  | { view: "stations" }
  | { view: "passes" }
  | { view: "tasks" }
  | { view: "commands"; satId: string | null }
  | { view: "alarms" }
  | { view: "cluster" }
  | { view: "signin" };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  switch (parts[0]) {
    case "satellites":
      return { view: "satellites" };
    case "sat":
      return parts[1] ? { view: "satellite", satId: parts[1] } : { view: "satellites" };
    case "new-satellite":
      return { view: "newsat" };
    case "stations":
      return { view: "stations" };
    case "passes":
      return { view: "passes" };
    case "tasks":
      return { view: "tasks" };
    case "commands":
      return { view: "commands", satId: parts[1] || null };
    case "alarms":
      return { view: "alarms" };
    case "cluster":
      return { view: "cluster" };
    case "signin":
      return { view: "signin" };
    default:
      return { view: "map", satId: parts[0] === "map" && parts[1] ? parts[1] : null };
  }
}

export function href(route: Route): string {
  switch (route.view) {
    case "map":
      return route.satId ? `#/map/${encodeURIComponent(route.satId)}` : "#/map";
    case "satellite":
      return `#/sat/${encodeURIComponent(route.satId)}`;
    case "commands":
      return route.satId ? `#/commands/${encodeURIComponent(route.satId)}` : "#/commands";
    case "newsat":
      return "#/new-satellite";
    default:
      return `#/${route.view}`;
  }
}

function subscribe(callback: () => void): () => void {
  window.addEventListener("hashchange", callback);
  return () => window.removeEventListener("hashchange", callback);
}

export function useHash(): string {
  return useSyncExternalStore(subscribe, () => window.location.hash);
}
