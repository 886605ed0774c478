import type { Mode } from "./api/types";

// One colour per mode, shared by the map, the list and the legend.
export const MODE_COLORS: Record<Mode, string> = {
  nominal: "#4caf50",
  science: "#42a5f5",
  downlink: "#ab47bc",
  standby: "#bdbdbd",
  maintenance: "#ffa726",
  safe: "#ef5350",
};

export function modeColor(mode: string): string {
  return (MODE_COLORS as Record<string, string>)[mode] ?? "#ffffff";
}
