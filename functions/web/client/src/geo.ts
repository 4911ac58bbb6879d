// Longitudes across the antimeridian: the areas a search sends and the footprints the map draws.

export type BBox = [west: number, south: number, east: number, north: number];
type Position = number[];
type Ring = Position[];

const clampLat = (lat: number): number => Math.max(-90, Math.min(90, lat));

/** Longitude in [-180, 180]. */
export function wrapLon(lon: number): number {
  if (lon >= -180 && lon <= 180) return lon;
  const wrapped = ((((lon + 180) % 360) + 360) % 360) - 180;
  return wrapped === -180 && lon > 0 ? 180 : wrapped;
}

/** A box from two corners as drawn on the map (longitudes may run past ±180); null when it covers every longitude. */
export function bboxFromCorners(lon1: number, lat1: number, lon2: number, lat2: number): BBox | null {
  const west = Math.min(lon1, lon2);
  const east = Math.max(lon1, lon2);
  const south = clampLat(Math.min(lat1, lat2));
  const north = clampLat(Math.max(lat1, lat2));
  if (east - west >= 360) return [-180, south, 180, north];
  return [round(wrapLon(west)), round(south), round(wrapLon(east)), round(north)];
}

const round = (value: number): number => Math.round(value * 100) / 100; // ~1 km: a drawn box is no finer

/** Width in degrees of longitude; a box with west > east crosses the antimeridian. */
export function bboxWidth([west, , east]: BBox): number {
  return west <= east ? east - west : 360 - west + east;
}

/**
 * The box as lon/lat rectangles inside [-180, 180], each under 180° wide: the OData API reads a polygon
 * edge over 180° the short way round, so a wide box or one across the antimeridian is sent in parts.
 */
export function bboxParts(box: BBox): BBox[] {
  const [west, south, east, north] = box;
  const spans: [number, number][] = west <= east ? [[west, east]] : [[west, 180], [-180, east]];
  const parts: BBox[] = [];
  for (const [w, e] of spans) {
    const pieces = Math.max(1, Math.ceil((e - w) / 120));
    const step = (e - w) / pieces;
    for (let i = 0; i < pieces; i++) parts.push([round(w + i * step), south, round(i === pieces - 1 ? e : w + (i + 1) * step), north]);
  }
  return parts;
}

/** WKT polygons of the box's parts. Not one MULTIPOLYGON: parts sharing an edge make an invalid one. */
export function bboxWkts(box: BBox): string[] {
  return bboxParts(box).map(([w, s, e, n]) => `POLYGON((${w} ${s},${e} ${s},${e} ${n},${w} ${n},${w} ${s}))`);
}

export function parseBBox(text: string | null): BBox | null {
  if (!text) return null;
  const values = text.split(",").map((v) => Number(v.trim()));
  if (values.length !== 4 || values.some((v) => !Number.isFinite(v))) return null;
  const [west, south, east, north] = values;
  if (Math.abs(west) > 180 || Math.abs(east) > 180 || Math.abs(south) > 90 || Math.abs(north) > 90 || south > north) return null;
  return [west, south, east, north];
}

/** The polygons of a GeoJSON footprint (Polygon or MultiPolygon), as rings of [lon, lat]. */
export function polygonsOf(geometry: GeoJSON.Geometry | null | undefined): Ring[][] {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  if (geometry.type === "GeometryCollection") return geometry.geometries.flatMap(polygonsOf);
  return [];
}

/**
 * The footprint made continuous for drawing: the catalog splits a footprint at ±180 (as GeoJSON
 * wants); drawn as is, its two halves sit at both edges of the map. Parts west of the antimeridian
 * keep their longitudes, parts east of it move by +360, so the shape is drawn whole around 180°.
 */
export function unwrapFootprint(geometry: GeoJSON.Geometry | null | undefined): Ring[][] {
  const polygons = polygonsOf(geometry);
  const touches = (limit: number) => polygons.some((p) => p[0].some(([lon]) => lon === limit));
  if (!(touches(180) && touches(-180))) return polygons;
  return polygons.map((polygon) => {
    const lons = polygon[0].map(([lon]) => lon);
    const east = Math.max(...lons) <= 0 && Math.min(...lons) === -180 ? 360 : 0;
    return polygon.map((ring) => ring.map(([lon, lat]) => [lon + east, lat]));
  });
}

/** The lines and points of a footprint that is no area (a wave-mode track, a single position). */
export function linesOf(geometry: GeoJSON.Geometry | null | undefined): Ring[] {
  if (!geometry) return [];
  if (geometry.type === "LineString") return [unwrapLine(geometry.coordinates)];
  if (geometry.type === "MultiLineString") return geometry.coordinates.map(unwrapLine);
  if (geometry.type === "Point") return [[geometry.coordinates]];
  if (geometry.type === "MultiPoint") return geometry.coordinates.map((point) => [point]);
  if (geometry.type === "GeometryCollection") return geometry.geometries.flatMap(linesOf);
  return [];
}

/** A line whose consecutive positions jump over 180° crosses the antimeridian: continue it past ±180. */
function unwrapLine(line: Position[]): Ring {
  const out: Ring = [];
  let shift = 0;
  line.forEach(([lon, lat], i) => {
    if (i > 0) {
      const step = lon - line[i - 1][0];
      if (step > 180) shift -= 360;
      else if (step < -180) shift += 360;
    }
    out.push([lon + shift, lat]);
  });
  return out;
}

/** [west, south, east, north] of rings, in their own (possibly unwrapped) longitudes. */
export function extentOf(polygons: Ring[][]): BBox | null {
  let [w, s, e, n] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const polygon of polygons)
    for (const [lon, lat] of polygon[0]) {
      w = Math.min(w, lon);
      e = Math.max(e, lon);
      s = Math.min(s, lat);
      n = Math.max(n, lat);
    }
  return Number.isFinite(w) ? [w, s, e, n] : null;
}
