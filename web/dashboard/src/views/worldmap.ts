// Drawing the map's layers on a 2D canvas (equirectangular, north up, 180° W at the left edge).

import type { MultiPolygon, Polygon } from "geojson";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import landTopology from "world-atlas/land-110m.json";
import type { LonLat } from "../geo";
import { nightPolygon, project, smallCircle, splitAtAntimeridian } from "../geo";

type LandTopology = Topology<{ land: GeometryCollection }>;

let landRings: LonLat[][] | null = null;

/** The coastlines as rings of [lon, lat], decoded once from the bundled TopoJSON. */
export function land(): LonLat[][] {
  if (landRings) return landRings;
  const topology = landTopology as unknown as LandTopology;
  const collection = feature(topology, topology.objects.land);
  const rings: LonLat[][] = [];
  for (const f of collection.features) {
    const geometry = f.geometry as Polygon | MultiPolygon;
    const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    for (const polygon of polygons) for (const ring of polygon) rings.push(ring.map(([lon, lat]) => [lon ?? 0, lat ?? 0]));
  }
  landRings = rings;
  return rings;
}

function unwrap(ring: LonLat[]): LonLat[] {
  const out: LonLat[] = [];
  let shift = 0;
  let prev: number | null = null;
  for (const [lon, lat] of ring) {
    if (prev !== null && Math.abs(lon - prev) > 180) shift += lon < prev ? 360 : -360;
    prev = lon;
    out.push([lon + shift, lat]);
  }
  return out;
}

function trace(ctx: CanvasRenderingContext2D, points: LonLat[], w: number, h: number): void {
  points.forEach(([lon, lat], i) => {
    const [x, y] = project(lon, lat, w, h);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
}

/** Ocean, land and graticule: drawn once per size onto a cached canvas. */
export function drawBase(ctx: CanvasRenderingContext2D, w: number, h: number): void {
  ctx.fillStyle = "#0d2236";
  ctx.fillRect(0, 0, w, h);
  ctx.beginPath();
  for (const ring of land()) {
    // Rings that cross the antimeridian (Chukotka, Antarctica) are unwrapped into continuous
    // longitudes and drawn again one map-width over: each half then fills where it belongs.
    const unwrapped = unwrap(ring);
    const lons = unwrapped.map(([lon]) => lon);
    if (Math.max(...lons) - Math.min(...lons) >= 359) {
      // Antarctica goes all the way round: close it over the pole, not along its last parallel.
      const first = unwrapped[0];
      const last = unwrapped[unwrapped.length - 1];
      if (first && last) unwrapped.push([last[0], -90], [first[0], -90]);
    }
    const crosses = unwrapped.some(([lon]) => lon > 180 || lon < -180);
    for (const offset of crosses ? [-360, 0, 360] : [0]) trace(ctx, unwrapped.map(([lon, lat]) => [lon + offset, lat]), w, h);
  }
  ctx.fillStyle = "#2b3f2f";
  ctx.fill("evenodd");
  ctx.strokeStyle = "#5b7a5e";
  ctx.lineWidth = 0.6;
  ctx.stroke();
  ctx.beginPath();
  for (let lon = -150; lon <= 150; lon += 30) trace(ctx, [[lon, -90], [lon, 90]], w, h);
  for (let lat = -60; lat <= 60; lat += 30) trace(ctx, [[-180, lat], [180, lat]], w, h);
  ctx.strokeStyle = "rgba(255,255,255,0.08)";
  ctx.lineWidth = 1;
  ctx.stroke();
}

export function drawNight(ctx: CanvasRenderingContext2D, w: number, h: number, tMs: number): void {
  ctx.beginPath();
  trace(ctx, nightPolygon(tMs), w, h);
  ctx.closePath();
  ctx.fillStyle = "rgba(0, 0, 12, 0.42)";
  ctx.fill();
}

/** A small circle (footprint, visibility circle) as an outline, split at the antimeridian. */
export function drawCircle(
  ctx: CanvasRenderingContext2D,
  w: number,
  h: number,
  latDeg: number,
  lonDeg: number,
  radiusDeg: number,
  stroke: string,
  fill: string | null,
): void {
  const parts = splitAtAntimeridian(smallCircle(latDeg, lonDeg, radiusDeg));
  if (fill && parts.length === 1 && parts[0]) {
    ctx.beginPath();
    trace(ctx, parts[0], w, h);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
  }
  ctx.beginPath();
  for (const part of parts) trace(ctx, part, w, h);
  ctx.strokeStyle = stroke;
  ctx.stroke();
}

export function drawPath(ctx: CanvasRenderingContext2D, w: number, h: number, points: LonLat[], stroke: string, dash: number[]): void {
  ctx.beginPath();
  for (const part of splitAtAntimeridian(points)) trace(ctx, part, w, h);
  ctx.setLineDash(dash);
  ctx.strokeStyle = stroke;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
}
