// The map: plate carrée (EPSG:4326, so the poles are on it), an offline Natural Earth base map, the
// footprints of a page of results and the area of the search, drawn as a rectangle with the mouse.
import "leaflet/dist/leaflet.css";
import L from "leaflet";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import countriesUrl from "world-atlas/countries-50m.json";
import { type BBox, bboxFromCorners, extentOf, linesOf, unwrapFootprint } from "./geo";

export interface Footprinted {
  Id: string;
  Name: string;
  GeoFootprint?: GeoJSON.Geometry | null;
}

const FOOTPRINT: L.PathOptions = { color: "#0b5cad", weight: 1.5, fillOpacity: 0.15 };
const HIGHLIGHT: L.PathOptions = { color: "#d9480f", weight: 3, fillOpacity: 0.3 };
const COPIES = [-360, 0, 360]; // the base map around the antimeridian, either side

export class FootprintMap {
  readonly map: L.Map;
  private readonly element: HTMLElement;
  private readonly footprints = L.featureGroup();
  private readonly layers = new Map<string, L.Path[]>();
  private area: L.Rectangle | null = null;
  private drawing: { start: L.LatLng | null; onDone: (box: BBox | null) => void } | null = null;

  constructor(element: HTMLElement, onSelect: (id: string) => void) {
    this.element = element;
    this.map = L.map(element, {
      crs: L.CRS.EPSG4326,
      center: [20, 0],
      zoom: 1,
      minZoom: 0,
      zoomSnap: 0.25, // fit a search's area closely
      maxZoom: 12,
      maxBounds: L.latLngBounds([-100, -560], [100, 560]),
      keyboardPanDelta: 120,
      attributionControl: true,
      preferCanvas: false,
    });
    this.map.attributionControl.setPrefix(false).addAttribution("Natural Earth (world-atlas)");
    this.footprints.addTo(this.map);
    // Says when the view is still moving (fits animate): what is drawn is where it stays once this is gone.
    this.map.on("movestart zoomstart", () => (element.dataset.moving = "true"));
    this.map.on("moveend zoomend", () => delete element.dataset.moving);
    this.footprints.on("click", (event: L.LeafletMouseEvent) => {
      const id = (event.propagatedFrom as L.Path & { productId?: string }).productId;
      if (id && !this.drawing) onSelect(id);
    });
    this.installDrawing();
  }

  /** The Natural Earth countries (a hashed, immutable file): loaded after the first results, whose request
   * would otherwise wait for the main thread while it parses and draws 750 kB of borders. */
  async loadBaseMap(): Promise<void> {
    // The file loader makes this import the asset's URL (build.mjs); tsc sees the JSON itself.
    const response = await fetch(countriesUrl as unknown as string);
    const topology = (await response.json()) as Topology<{ countries: GeometryCollection }>;
    const land = feature(topology, topology.objects.countries);
    const renderer = L.canvas({ padding: 0.2 });
    for (const offset of COPIES) {
      const options: L.GeoJSONOptions & { renderer: L.Renderer } = {
        renderer, // given to each country's path: one canvas for the whole base map
        interactive: false,
        style: { color: "#9c927b", weight: 0.6, fillColor: "#e8e1cf", fillOpacity: 1 },
        coordsToLatLng: ([lon, lat]) => L.latLng(lat, lon + offset),
      };
      L.geoJSON(land, options)
        .addTo(this.map)
        .bringToBack();
    }
    this.element.dataset.basemap = "loaded";
  }

  /** Draws one page of results; returns nothing, exposes what was drawn in data-footprints (for tests and tools). */
  show(products: Footprinted[], fit: boolean): void {
    this.footprints.clearLayers();
    this.layers.clear();
    const drawn: Record<string, number[]> = {};
    for (const product of products) {
      const polygons = unwrapFootprint(product.GeoFootprint);
      const lines = linesOf(product.GeoFootprint); // wave-mode tracks, single positions: no area
      const extent = extentOf([...polygons, ...lines.map((line) => [line])]);
      if (!extent) continue;
      // One copy where the footprint is, another a turn away when it runs past 180° (seen from the west side too).
      const offsets = extent[2] > 180 ? [0, -360] : extent[0] < -180 ? [0, 360] : [0];
      const layers = offsets.flatMap((offset) => {
        const at = ([lon, lat]: number[]): L.LatLng => L.latLng(lat, lon + offset);
        const shapes: (L.Path & { productId?: string })[] = [];
        if (polygons.length) shapes.push(L.polygon(polygons.map((polygon) => polygon.map((ring) => ring.map(at))), FOOTPRINT));
        for (const line of lines)
          shapes.push(line.length === 1 ? L.circleMarker(at(line[0]), { ...FOOTPRINT, radius: 5 }) : L.polyline(line.map(at), FOOTPRINT));
        for (const layer of shapes) {
          layer.productId = product.Id;
          layer.bindTooltip(product.Name, { sticky: true });
          this.footprints.addLayer(layer);
          // The footprint itself carries the product's id; its copy a turn away says it is one.
          layer.getElement()?.setAttribute(offset === 0 ? "data-product" : "data-product-copy", product.Id);
        }
        return shapes;
      });
      this.layers.set(product.Id, layers);
      drawn[product.Id] = extent;
    }
    this.element.dataset.footprints = JSON.stringify(drawn);
    if (fit && this.footprints.getLayers().length) {
      const bounds = L.featureGroup(products.flatMap((p) => this.layers.get(p.Id)?.slice(0, 1) ?? [])).getBounds();
      this.map.fitBounds(bounds.pad(0.1), { maxZoom: 7 });
    }
  }

  highlight(id: string | null, pan = false): void {
    for (const [key, layers] of this.layers) {
      for (const layer of layers) {
        layer.setStyle(key === id ? HIGHLIGHT : FOOTPRINT);
        if (key === id) layer.bringToFront();
      }
    }
    const layer = id ? this.layers.get(id)?.[0] : undefined;
    if (pan && layer) this.map.fitBounds(L.featureGroup([layer]).getBounds().pad(0.5), { maxZoom: 7 });
  }

  /** The search's area; a box across the antimeridian is drawn from west to east + 360. */
  showArea(box: BBox | null, fit: boolean): void {
    this.area?.remove();
    this.area = null;
    if (!box) return;
    const [west, south, east, north] = box;
    const bounds = L.latLngBounds([south, west], [north, west > east ? east + 360 : east]);
    this.area = L.rectangle(bounds, { color: "#d9480f", weight: 2, dashArray: "6 4", fill: false, interactive: false });
    this.area.addTo(this.map);
    this.element.dataset.area = box.join(",");
    if (fit) this.map.fitBounds(bounds, { maxZoom: 9 });
  }

  /** Draw a rectangle with the mouse (press, drag, release); Escape cancels. */
  startDrawing(onDone: (box: BBox | null) => void): void {
    this.drawing = { start: null, onDone };
    this.map.dragging.disable();
    this.map.boxZoom.disable();
    this.element.classList.add("drawing");
  }

  stopDrawing(box: BBox | null): void {
    if (!this.drawing) return;
    const { onDone } = this.drawing;
    this.drawing = null;
    this.map.dragging.enable();
    this.map.boxZoom.enable();
    this.element.classList.remove("drawing");
    onDone(box);
  }

  private installDrawing(): void {
    let preview: L.Rectangle | null = null;
    this.map.on("mousedown", (event: L.LeafletMouseEvent) => {
      if (!this.drawing) return;
      this.drawing.start = event.latlng;
      preview = L.rectangle(L.latLngBounds(event.latlng, event.latlng), { color: "#d9480f", weight: 2, interactive: false }).addTo(this.map);
    });
    this.map.on("mousemove", (event: L.LeafletMouseEvent) => {
      if (this.drawing?.start && preview) preview.setBounds(L.latLngBounds(this.drawing.start, event.latlng));
    });
    this.map.on("mouseup", (event: L.LeafletMouseEvent) => {
      const start = this.drawing?.start;
      if (!start) return;
      preview?.remove();
      preview = null;
      const box = bboxFromCorners(start.lng, start.lat, event.latlng.lng, event.latlng.lat);
      const empty = !box || (box[0] === box[2] && box[1] === box[3]);
      this.stopDrawing(empty ? null : box);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.drawing) {
        preview?.remove();
        preview = null;
        this.stopDrawing(null);
      }
    });
  }
}
