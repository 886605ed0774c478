// The dashboard's client state (Zustand): the live picture of the cluster built from REST
// snapshots plus the event stream, the connection state, and the session's token and role.

import { create } from "zustand";
import type { LiveState } from "./api/reducer";
import { initialState } from "./api/reducer";
import type { ConnectionState } from "./api/sse";
import type { Role } from "./api/types";

export const TOKEN_KEY = "stellarops.token";

export interface DashboardState {
  live: LiveState;
  connection: ConnectionState;
  connectionDetail: string;
  /** When the stream last delivered anything (events or heartbeats), ms since the epoch. */
  lastDataMs: number | null;
  token: string | null;
  role: Role | null;
  anonymous: boolean;
  setLive(update: (live: LiveState) => LiveState): void;
  setConnection(state: ConnectionState, detail: string): void;
  touch(nowMs: number): void;
  setToken(token: string | null): void;
  setSession(role: Role | null, anonymous: boolean): void;
}

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export const useDashboard = create<DashboardState>()((set) => ({
  live: initialState(),
  connection: "connecting",
  connectionDetail: "",
  lastDataMs: null,
  token: storedToken(),
  role: null,
  anonymous: false,
  setLive: (update) => set((state) => ({ live: update(state.live) })),
  setConnection: (connection, connectionDetail) => set({ connection, connectionDetail }),
  // Once a second is enough for "data from N s ago"; the stream delivers chunks ~20 times a second.
  touch: (nowMs) => set((state) => (state.lastDataMs !== null && nowMs - state.lastDataMs < 1000 ? state : { lastDataMs: nowMs })),
  setToken: (token) => {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: the token lives for this page only
    }
    set({ token, role: null, anonymous: false });
  },
  setSession: (role, anonymous) => set({ role, anonymous }),
}));

/** Whether this role may do what needs `needed`. */
export function allows(role: Role | null, needed: Role): boolean {
  const rank: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };
  return role !== null && rank[role] >= rank[needed];
}
