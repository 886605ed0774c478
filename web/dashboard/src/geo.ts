// Spherical-Earth geometry for the map: an equirectangular projection, coverage circles, the
// subsolar point and the day/night terminator. A sphere is ample at map scale (the ellipsoid moves
// a circle by < 0.2° here); positions themselves come from SGP4 on the server.

export const EARTH_RADIUS_KM = 6371.0;
const RAD = Math.PI / 180;

export type LonLat = [lon_deg: number, lat_deg: number];

export function project(lonDeg: number, latDeg: number, width: number, height: number): [number, number] {
  return [((lonDeg + 180) / 360) * width, ((90 - latDeg) / 180) * height];
}

export function unproject(x: number, y: number, width: number, height: number): LonLat {
  return [(x / width) * 360 - 180, 90 - (y / height) * 180];
}

export function wrapLon(lonDeg: number): number {
  const wrapped = ((((lonDeg + 180) % 360) + 360) % 360) - 180;
  return wrapped === -180 && lonDeg > 0 ? 180 : wrapped;
}

/** Earth central angle (deg) from a point below a satellite at alt_km to where it is seen at
 * min_el_deg: the radius of its coverage footprint, or of a station's visibility circle. */
export function coverageRadiusDeg(altKm: number, minElDeg: number): number {
  const el = minElDeg * RAD;
  const ratio = (EARTH_RADIUS_KM / (EARTH_RADIUS_KM + Math.max(altKm, 0))) * Math.cos(el);
  return (Math.acos(Math.min(1, ratio)) - el) / RAD;
}

/** Points of the small circle of angular radius radiusDeg around (lat, lon), closed. */
export function smallCircle(latDeg: number, lonDeg: number, radiusDeg: number, points = 120): LonLat[] {
  const lat1 = latDeg * RAD;
  const lon1 = lonDeg * RAD;
  const d = radiusDeg * RAD;
  const out: LonLat[] = [];
  for (let i = 0; i <= points; i += 1) {
    const bearing = (2 * Math.PI * i) / points;
    const lat2 = Math.asin(Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(bearing));
    const lon2 = lon1 + Math.atan2(Math.sin(bearing) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * Math.sin(lat2));
    out.push([wrapLon(lon2 / RAD), lat2 / RAD]);
  }
  return out;
}

/** Split a path where it crosses the antimeridian, so no line is drawn across the whole map. */
export function splitAtAntimeridian(path: LonLat[]): LonLat[][] {
  const parts: LonLat[][] = [];
  let current: LonLat[] = [];
  for (const point of path) {
    const prev = current[current.length - 1];
    if (prev && Math.abs(point[0] - prev[0]) > 180) {
      parts.push(current);
      current = [];
    }
    current.push(point);
  }
  if (current.length) parts.push(current);
  return parts;
}

/** The point where the sun is at the zenith (low-precision almanac, ~0.01°; good for drawing). */
export function subsolarPoint(tMs: number): { lat_deg: number; lon_deg: number } {
  const n = tMs / 86_400_000 + 2440587.5 - 2451545.0; // days since J2000.0
  const meanLon = 280.46 + 0.9856474 * n;
  const anomaly = (357.528 + 0.9856003 * n) * RAD;
  const eclLon = (meanLon + 1.915 * Math.sin(anomaly) + 0.02 * Math.sin(2 * anomaly)) * RAD;
  const obliquity = (23.439 - 0.0000004 * n) * RAD;
  const decl = Math.asin(Math.sin(obliquity) * Math.sin(eclLon));
  const rightAscension = Math.atan2(Math.cos(obliquity) * Math.sin(eclLon), Math.cos(eclLon));
  const gmstDeg = 280.46061837 + 360.98564736629 * n;
  return { lat_deg: decl / RAD, lon_deg: wrapLon(rightAscension / RAD - gmstDeg) };
}

/** The night side as a polygon in lon/lat: the terminator from -180° to 180°, closed over the
 * pole that is in darkness. */
export function nightPolygon(tMs: number, steps = 180): LonLat[] {
  const sun = subsolarPoint(tMs);
  // Avoid tan(0) at the equinoxes: a hair of declination keeps the formula finite.
  const decl = (Math.abs(sun.lat_deg) < 1e-3 ? 1e-3 : sun.lat_deg) * RAD;
  const points: LonLat[] = [];
  for (let i = 0; i <= steps; i += 1) {
    const lon = -180 + (360 * i) / steps;
    const lat = Math.atan(-Math.cos((lon - sun.lon_deg) * RAD) / Math.tan(decl)) / RAD;
    points.push([lon, lat]);
  }
  const darkPole = decl > 0 ? -90 : 90;
  points.push([180, darkPole], [-180, darkPole]);
  return points;
}

/** Sun elevation (deg) at a point: > 0 by day. */
export function sunElevationDeg(latDeg: number, lonDeg: number, tMs: number): number {
  const sun = subsolarPoint(tMs);
  const cosAngle =
    Math.sin(latDeg * RAD) * Math.sin(sun.lat_deg * RAD) +
    Math.cos(latDeg * RAD) * Math.cos(sun.lat_deg * RAD) * Math.cos((lonDeg - sun.lon_deg) * RAD);
  return 90 - Math.acos(Math.max(-1, Math.min(1, cosAngle))) / RAD;
}
