import { describe, expect, it } from "vitest";
import { coverageRadiusDeg, nightPolygon, project, smallCircle, splitAtAntimeridian, subsolarPoint, sunElevationDeg, wrapLon } from "./geo";

const RAD = Math.PI / 180;

function centralAngleDeg(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const c = Math.sin(lat1 * RAD) * Math.sin(lat2 * RAD) + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.cos((lon2 - lon1) * RAD);
  return Math.acos(Math.min(1, Math.max(-1, c))) / RAD;
}

describe("geo", () => {
  it("projects the corners and centre of the equirectangular map", () => {
    expect(project(-180, 90, 800, 400)).toEqual([0, 0]);
    expect(project(0, 0, 800, 400)).toEqual([400, 200]);
    expect(project(180, -90, 800, 400)).toEqual([800, 400]);
  });

  it("wraps longitudes into [-180, 180]", () => {
    expect(wrapLon(190)).toBe(-170);
    expect(wrapLon(-190)).toBe(170);
    expect(wrapLon(180)).toBe(180);
    expect(wrapLon(540)).toBe(180);
  });

  it("computes coverage radii (550 km: 23.0° to the horizon, about 18° at 5° elevation)", () => {
    expect(coverageRadiusDeg(550, 0)).toBeCloseTo((Math.acos(6371 / 6921) / RAD), 6);
    expect(coverageRadiusDeg(550, 0)).toBeCloseTo(23.0, 0);
    expect(coverageRadiusDeg(550, 5)).toBeGreaterThan(17);
    expect(coverageRadiusDeg(550, 5)).toBeLessThan(19);
    expect(coverageRadiusDeg(550, 90)).toBeCloseTo(0, 6);
  });

  it("puts every small-circle point at the radius from the centre, across the antimeridian", () => {
    const points = smallCircle(60, 175, 20);
    for (const [lon, lat] of points) expect(centralAngleDeg(60, 175, lat, lon)).toBeCloseTo(20, 6);
    expect(splitAtAntimeridian(points).length).toBeGreaterThan(1);
    expect(splitAtAntimeridian(smallCircle(0, 0, 10))).toHaveLength(1);
  });

  it("finds the subsolar point (June solstice ~23.44° N; noon UTC near 0° longitude)", () => {
    const solstice = subsolarPoint(Date.UTC(2026, 5, 21, 12, 0, 0));
    expect(solstice.lat_deg).toBeCloseTo(23.44, 1);
    expect(Math.abs(solstice.lon_deg)).toBeLessThan(1); // equation of time: -1.5 min = 0.4°
    const equinox = subsolarPoint(Date.UTC(2026, 2, 20, 14, 46, 0));
    expect(Math.abs(equinox.lat_deg)).toBeLessThan(0.05);
  });

  it("draws the terminator where the sun is on the horizon, with the dark pole inside", () => {
    const t = Date.UTC(2026, 11, 21, 6, 0, 0); // December: the north pole is dark
    const polygon = nightPolygon(t);
    for (const [lon, lat] of polygon.slice(0, -2)) expect(Math.abs(sunElevationDeg(lat, lon, t))).toBeLessThan(0.01);
    expect(polygon.slice(-2).every(([, lat]) => lat === 90)).toBe(true);
    expect(sunElevationDeg(89, 0, t)).toBeLessThan(0);
  });
});
