import { useQuery } from "@tanstack/react-query";
import { useEffect } from "react";
import { ApiError } from "./api/client";
import { AlarmBadge } from "./components/AlarmBadge";
import { CommandHistory } from "./components/CommandHistory";
import { ConnectionBadge } from "./components/ConnectionBadge";
import { OutageBanner } from "./components/OutageBanner";
import { TokenControl } from "./components/TokenControl";
import { href, parseRoute, useHash } from "./route";
import type { Route } from "./route";
import { api } from "./services";
import { useDashboard } from "./store";
import { AlarmsPanel } from "./views/AlarmsPanel";
import { ClusterPanel } from "./views/ClusterPanel";
import { MapView } from "./views/MapView";
import { PassesTimeline } from "./views/PassesTimeline";
import { SatDetail } from "./views/SatDetail";
import { SatelliteForm } from "./views/SatelliteForm";
import { SatList } from "./views/SatList";
import { SignIn } from "./views/SignIn";
import { StationsPanel } from "./views/StationsPanel";
import { TasksView } from "./views/TasksView";

const TABS: { label: string; route: Route; views: Route["view"][] }[] = [
  { label: "Map", route: { view: "map", satId: null }, views: ["map"] },
  { label: "Satellites", route: { view: "satellites" }, views: ["satellites", "satellite", "newsat"] },
  { label: "Stations", route: { view: "stations" }, views: ["stations"] },
  { label: "Passes", route: { view: "passes" }, views: ["passes"] },
  { label: "Tasks", route: { view: "tasks" }, views: ["tasks"] },
  { label: "Commands", route: { view: "commands", satId: null }, views: ["commands"] },
  { label: "Alarms", route: { view: "alarms" }, views: ["alarms"] },
  { label: "Cluster", route: { view: "cluster" }, views: ["cluster"] },
];

function View({ route }: { route: Route }) {
  switch (route.view) {
    case "map":
      return <MapView selected={route.satId} />;
    case "satellites":
      return <SatList />;
    case "satellite":
      return <SatDetail satId={route.satId} />;
    case "newsat":
      return <SatelliteForm />;
    case "stations":
      return <StationsPanel />;
    case "passes":
      return <PassesTimeline />;
    case "tasks":
      return <TasksView />;
    case "commands":
      return <CommandHistory key={route.satId ?? ""} satId={route.satId ?? undefined} />;
    case "alarms":
      return <AlarmsPanel />;
    case "cluster":
      return <ClusterPanel />;
    case "signin":
      return <SignIn reason={null} />;
  }
}

export function App() {
  const route = parseRoute(useHash());
  const token = useDashboard((s) => s.token);
  const setSession = useDashboard((s) => s.setSession);
  const session = useQuery({ queryKey: ["session", token], queryFn: () => api.session(), staleTime: 60_000 });

  useEffect(() => {
    if (session.data) setSession(session.data.role, session.data.anonymous);
  }, [session.data, setSession]);

  const needsSignIn = session.error instanceof ApiError && session.error.status === 401;
  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href="#/map">
          StellarOps
        </a>
        <nav>
          {TABS.map((tab) => (
            <a key={tab.label} href={href(tab.route)} className={tab.views.includes(route.view) ? "active" : ""}>
              {tab.label}
            </a>
          ))}
        </nav>
        <div className="spacer" />
        <AlarmBadge />
        <ConnectionBadge />
        <TokenControl />
      </header>
      <OutageBanner />
      <main>{needsSignIn ? <SignIn reason={token ? "The token was not accepted." : null} /> : <View route={route} />}</main>
    </div>
  );
}
