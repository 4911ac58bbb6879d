// The search: what the form holds, how the URL keeps it (shareable) and the OData query it makes.
import { type BBox, bboxWkts, parseBBox } from "./geo";

export const SORTS: Record<string, string> = {
  newest: "PublicationDate desc",
  "sensing-desc": "ContentDate/Start desc",
  "sensing-asc": "ContentDate/Start asc",
  name: "Name asc",
  size: "ContentLength desc",
};
export const PAGE_SIZES = [20, 50, 100];
export const MISSIONS: Record<string, string> = { S1: "SENTINEL-1", S2: "SENTINEL-2", S3: "SENTINEL-3" };
// Only the list's columns and the footprint: one request draws a page, whatever its size.
const SELECT = "Name,ContentDate,ContentLength,PublicationDate,Online,GeoFootprint";

export interface Search {
  mission: string;
  productType: string;
  name: string;
  start: string; // yyyy-mm-dd, sensing overlaps from this day
  end: string; // yyyy-mm-dd, to the end of this day
  bbox: BBox | null;
  cloud: number | null; // at most, in percent
  sort: string;
  size: number;
}

export function emptySearch(): Search {
  return { mission: "", productType: "", name: "", start: "", end: "", bbox: null, cloud: null, sort: "newest", size: 50 };
}

export function searchFromUrl(query: string): Search {
  const params = new URLSearchParams(query);
  const search = emptySearch();
  search.mission = params.get("mission") ?? "";
  search.productType = params.get("type") ?? "";
  search.name = params.get("name") ?? "";
  search.start = validDate(params.get("start"));
  search.end = validDate(params.get("end"));
  search.bbox = parseBBox(params.get("bbox"));
  const cloud = Number(params.get("cloud") ?? "NaN");
  search.cloud = params.get("cloud") !== null && cloud >= 0 && cloud <= 100 ? cloud : null;
  search.sort = (params.get("sort") ?? "") in SORTS ? (params.get("sort") as string) : "newest";
  const size = Number(params.get("size"));
  search.size = PAGE_SIZES.includes(size) ? size : 50;
  return search;
}

export function searchToUrl(search: Search, product?: string): string {
  const params = new URLSearchParams();
  if (search.mission) params.set("mission", search.mission);
  if (search.productType) params.set("type", search.productType);
  if (search.name) params.set("name", search.name);
  if (search.start) params.set("start", search.start);
  if (search.end) params.set("end", search.end);
  if (search.bbox) params.set("bbox", search.bbox.join(","));
  if (search.cloud !== null) params.set("cloud", String(search.cloud));
  if (search.sort !== "newest") params.set("sort", search.sort);
  if (search.size !== 50) params.set("size", String(search.size));
  if (product) params.set("product", product);
  const text = params.toString();
  return text ? `?${text}` : "";
}

const validDate = (value: string | null): string => (value && /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : "");
const quoted = (value: string): string => `'${value.replace(/'/g, "''")}'`;

function nextDay(date: string): string {
  const day = new Date(`${date}T00:00:00.000Z`);
  day.setUTCDate(day.getUTCDate() + 1);
  return day.toISOString();
}

export function odataFilter(search: Search): string {
  const terms: string[] = [];
  if (search.mission && MISSIONS[search.mission]) terms.push(`Collection/Name eq ${quoted(MISSIONS[search.mission])}`);
  if (search.productType)
    terms.push(
      "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and " +
        `att/OData.CSC.StringAttribute/Value eq ${quoted(search.productType)})`,
    );
  if (search.name) terms.push(`contains(Name,${quoted(search.name)})`);
  // Sensing that overlaps the days chosen.
  if (search.start) terms.push(`ContentDate/End ge ${search.start}T00:00:00.000Z`);
  if (search.end) terms.push(`ContentDate/Start lt ${nextDay(search.end)}`);
  if (search.bbox) {
    const areas = bboxWkts(search.bbox).map((wkt) => `OData.CSC.Intersects(area=geography'SRID=4326;${wkt}')`);
    terms.push(areas.length === 1 ? areas[0] : `(${areas.join(" or ")})`);
  }
  if (search.cloud !== null)
    terms.push(
      "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and " +
        `att/OData.CSC.DoubleAttribute/Value le ${search.cloud})`,
    );
  return terms.join(" and ");
}

/** The first page's URL; the next ones are the answers' @odata.nextLink. */
export function productsUrl(odata: string, search: Search): string {
  const params = new URLSearchParams();
  const filter = odataFilter(search);
  if (filter) params.set("$filter", filter);
  params.set("$orderby", SORTS[search.sort]);
  params.set("$top", String(search.size));
  params.set("$count", "true");
  params.set("$select", SELECT);
  return `${odata}/Products?${params.toString()}`;
}
