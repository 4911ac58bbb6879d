// The refsys map client: search form, result list and pages, product page; the URL holds the search.
import "./style.css";
import { ApiError, authHeaders, errorMessage, getJson } from "./api";
import { type OidcConfig, completeLogin, currentToken, login, logout } from "./auth";
import { type BBox, parseBBox } from "./geo";
import { type Footprinted, FootprintMap } from "./map";
import { MISSIONS, type Search, productsUrl, searchFromUrl, searchToUrl } from "./search";

interface Config {
  odata: string;
  stac: string | null;
  oidc: OidcConfig | null;
}

interface Product extends Footprinted {
  ContentDate?: { Start: string | null; End: string | null };
  ContentLength?: number;
  PublicationDate?: string;
  Online?: boolean;
  [key: string]: unknown;
}

interface Page {
  value: Product[];
  "@odata.count"?: number;
  "@odata.nextLink"?: string;
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const form = $<HTMLFormElement>("search");
const field = <T extends HTMLInputElement | HTMLSelectElement>(name: string): T => form.elements.namedItem(name) as T;

let config: Config;
let fmap: FootprintMap;
let search: Search;
let pages: string[] = []; // the URL of each page seen, for Previous
let offset = 0;
let current: Product[] = [];
let inflight: AbortController | null = null;

function showError(message: string | null): void {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message ? `The API refused: ${message}` : "";
}

function describeFailure(error: unknown): string {
  return error instanceof ApiError ? error.message : String((error as Error).message ?? error);
}

// -- the form and the URL -------------------------------------------------------------------------

function fillForm(s: Search): void {
  field<HTMLSelectElement>("mission").value = s.mission;
  field<HTMLInputElement>("type").value = s.productType;
  field<HTMLInputElement>("name").value = s.name;
  field<HTMLInputElement>("start").value = s.start;
  field<HTMLInputElement>("end").value = s.end;
  field<HTMLInputElement>("bbox").value = s.bbox ? s.bbox.join(",") : "";
  field<HTMLInputElement>("cloud").value = s.cloud === null ? "" : String(s.cloud);
  field<HTMLSelectElement>("sort").value = s.sort;
  field<HTMLSelectElement>("size").value = String(s.size);
}

function readForm(): Search | null {
  const box = field<HTMLInputElement>("bbox");
  const bbox = parseBBox(box.value);
  if (box.value.trim() && !bbox) {
    showError(null);
    box.setCustomValidity("four numbers: west (-180..180), south, east, north (-90..90), south ≤ north");
    box.reportValidity();
    return null;
  }
  box.setCustomValidity("");
  const cloud = field<HTMLInputElement>("cloud").value;
  return {
    mission: field<HTMLSelectElement>("mission").value,
    productType: field<HTMLInputElement>("type").value.trim(),
    name: field<HTMLInputElement>("name").value.trim(),
    start: field<HTMLInputElement>("start").value,
    end: field<HTMLInputElement>("end").value,
    bbox,
    cloud: cloud === "" ? null : Math.max(0, Math.min(100, Number(cloud))),
    sort: field<HTMLSelectElement>("sort").value,
    size: Number(field<HTMLSelectElement>("size").value),
  };
}

function productInUrl(): string | null {
  return new URLSearchParams(location.search).get("product");
}

async function route(focusResults = false): Promise<void> {
  search = searchFromUrl(location.search);
  fillForm(search);
  fmap.showArea(search.bbox, Boolean(search.bbox));
  const product = productInUrl();
  if (pages.length === 0 || pages[0] !== productsUrl(config.odata, search)) await runSearch(focusResults && !product);
  if (product) await showProduct(product);
  else showResults(focusResults);
}

function navigate(product?: string): void {
  history.pushState(null, "", `${location.pathname}${searchToUrl(search, product)}`);
  void route(!product); // a search the user made: the focus goes to its results
}

// -- results --------------------------------------------------------------------------------------

async function runSearch(focus: boolean): Promise<void> {
  pages = [productsUrl(config.odata, search)];
  offset = 0;
  await loadPage(pages[0], focus);
}

async function loadPage(url: string, focus: boolean): Promise<void> {
  inflight?.abort();
  const controller = (inflight = new AbortController());
  $("count").textContent = "Searching…";
  $("results").setAttribute("aria-busy", "true");
  try {
    const page = await getJson<Page>(url, controller.signal);
    showError(null);
    current = page.value;
    renderResults(page);
    fmap.show(current, !search.bbox);
    if (focus) $("results-heading").focus({ preventScroll: true });
  } catch (error) {
    if ((error as Error).name === "AbortError") return;
    current = [];
    renderResults({ value: [] });
    fmap.show([], false);
    $("count").textContent = "No results: the search failed.";
    showError(describeFailure(error));
  } finally {
    if (inflight === controller) inflight = null;
    $("results").removeAttribute("aria-busy");
  }
}

function formatSize(bytes: number | undefined): string {
  if (bytes === undefined || bytes === null) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

const day = (time: string | null | undefined): string => (time ? time.replace("T", " ").replace(/\.\d+Z$/, "Z") : "");

function renderResults(page: Page): void {
  const list = $("results");
  list.replaceChildren();
  for (const product of page.value) {
    const item = document.createElement("li");
    item.dataset.product = product.Id;
    const link = document.createElement("a");
    link.href = searchToUrl(search, product.Id) || "?";
    link.textContent = product.Name;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      navigate(product.Id);
    });
    link.addEventListener("focus", () => fmap.highlight(product.Id));
    item.addEventListener("mouseenter", () => fmap.highlight(product.Id));
    item.addEventListener("mouseleave", () => fmap.highlight(null));
    const meta = document.createElement("div");
    meta.className = "meta";
    const footprint = product.GeoFootprint ? "" : " · no footprint";
    meta.textContent = `${day(product.ContentDate?.Start)} · ${formatSize(product.ContentLength)}${product.Online === false ? " · offline" : ""}${footprint}`;
    item.append(link, meta);
    list.append(item);
  }
  const total = page["@odata.count"];
  const shown = page.value.length;
  const from = shown ? offset + 1 : 0;
  $("count").textContent =
    total === undefined ? `${shown} products` : shown ? `${from}–${offset + shown} of ${total} products` : `No product matches (0 of ${total}).`;
  const next = $<HTMLButtonElement>("next");
  next.disabled = !page["@odata.nextLink"];
  next.dataset.url = page["@odata.nextLink"] ?? "";
  $<HTMLButtonElement>("previous").disabled = pages.length <= 1;
}

function showResults(focus: boolean): void {
  const wasProduct = !$("product-view").hidden;
  $("product-view").hidden = true;
  document.body.classList.remove("product-page");
  $("results-view").hidden = false;
  fmap.highlight(null);
  if (focus || wasProduct) $("results-heading").focus({ preventScroll: true });
}

// -- a product's page -----------------------------------------------------------------------------

async function showProduct(id: string): Promise<void> {
  const view = $("product-view");
  document.body.classList.add("product-page"); // the panel is the product's: the form comes back with the results
  $("results-view").hidden = true;
  view.hidden = false;
  view.replaceChildren(paragraph("Loading the product…"));
  const base = `${config.odata}/Products(${encodeURIComponent(id)})`;
  try {
    const product = await getJson<Product & { Attributes?: Attribute[]; Assets?: Asset[] }>(
      `${base}?$expand=Attributes,Assets`,
    );
    showError(null);
    renderProduct(view, product, base);
    fmap.highlight(product.Id, true);
    if (!current.some((p) => p.Id === product.Id)) fmap.show([...current, product], false);
    fmap.highlight(product.Id, true);
    void renderLineage(view, base);
  } catch (error) {
    view.replaceChildren(backButton(), paragraph("This product could not be shown."));
    showError(describeFailure(error));
  }
  $("product-heading")?.focus();
}

interface Attribute {
  Name: string;
  Value: unknown;
}
interface Asset {
  Type: string;
  Id: string;
  DownloadLink: string;
}

function paragraph(text: string): HTMLParagraphElement {
  const p = document.createElement("p");
  p.textContent = text;
  return p;
}

function backButton(): HTMLButtonElement {
  const back = document.createElement("button");
  back.type = "button";
  back.textContent = "← Back to the results";
  back.addEventListener("click", () => navigate());
  return back;
}

function definitionList(rows: [string, string][]): HTMLDListElement {
  const list = document.createElement("dl");
  list.className = "props";
  for (const [term, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
  return list;
}

function heading(level: 2 | 3, text: string, id?: string): HTMLHeadingElement {
  const h = document.createElement(`h${level}`);
  h.textContent = text;
  if (id) {
    h.id = id;
    h.tabIndex = -1;
  }
  return h;
}

function renderProduct(view: HTMLElement, product: Product & { Attributes?: Attribute[]; Assets?: Asset[] }, base: string): void {
  const checksum = (product.Checksum as { Algorithm: string; Value: string }[] | undefined)?.[0];
  const rows: [string, string][] = [
    ["Id", product.Id],
    ["Sensing start", day(product.ContentDate?.Start)],
    ["Sensing end", day(product.ContentDate?.End)],
    ["Size", `${formatSize(product.ContentLength)} (${product.ContentLength ?? "?"} bytes)`],
    ["Checksum", checksum ? `${checksum.Algorithm} ${checksum.Value}` : "none"],
    ["Published", day(product.PublicationDate)],
    ["Online", product.Online === false ? "no (evicted)" : "yes"],
    ["Eviction", day(product.EvictionDate as string)],
    ["Footprint", product.GeoFootprint ? "on the map" : "none"],
  ];
  const download = downloadControl(product, `${base}/$value`);
  const attributes = (product.Attributes ?? []).map((a): [string, string] => [a.Name, String(a.Value)]);
  const quicklooks = document.createElement("div");
  quicklooks.className = "quicklooks";
  const assets = (product.Assets ?? []).filter((a) => a.Type === "QUICKLOOK");
  quicklooks.append(heading(3, "Quicklook"));
  if (!assets.length) quicklooks.append(paragraph("No quicklook in this product."));
  for (const asset of assets) quicklooks.append(quicklookImage(asset, product.Name));
  const lineage = document.createElement("div");
  lineage.id = "lineage";
  lineage.append(heading(3, "Lineage"), paragraph("Loading…"));
  view.replaceChildren(
    backButton(),
    heading(2, product.Name, "product-heading"),
    download,
    definitionList(rows),
    quicklooks,
    lineage,
    heading(3, "Attributes"),
    definitionList(attributes),
  );
}

function quicklookImage(asset: Asset, name: string): HTMLElement {
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.alt = `Quicklook of ${name}`;
  figure.append(image);
  // Sentinel-2's quicklooks are JPEG 2000, which browsers do not read: say so, and link the file.
  image.addEventListener("error", () => {
    const caption = document.createElement("figcaption");
    const link = Object.assign(document.createElement("a"), { href: asset.DownloadLink, textContent: "the quicklook file" });
    caption.append("This browser cannot show this quicklook (not an image format it reads); download ", link, ".");
    figure.append(caption);
    image.hidden = true;
  });
  if (currentToken()) {
    // An <img> cannot send a bearer header: fetch it, then show the bytes.
    void fetch(asset.DownloadLink, { headers: authHeaders() })
      .then(async (response) => {
        if (!response.ok) throw new Error(await errorMessage(response));
        image.src = URL.createObjectURL(await response.blob());
      })
      .catch((error: Error) => {
        image.alt = `Quicklook not available: ${error.message}`;
      });
  } else image.src = asset.DownloadLink;
  return figure;
}

function downloadControl(product: Product, url: string): HTMLElement {
  if (!config.oidc) {
    const link = document.createElement("a");
    link.className = "download";
    link.href = url;
    link.id = "download";
    link.textContent = `Download (${formatSize(product.ContentLength)})`;
    link.setAttribute("download", product.Name);
    return link;
  }
  // With OIDC a link cannot carry the token: fetch with it and save what comes.
  const button = document.createElement("button");
  button.type = "button";
  button.className = "download";
  button.id = "download";
  button.textContent = `Download (${formatSize(product.ContentLength)})`;
  button.addEventListener("click", async () => {
    if (!currentToken()) {
      showError("log in to download (the API asks for a token with the downloader role)");
      return;
    }
    button.disabled = true;
    button.textContent = "Downloading…";
    try {
      const response = await fetch(url, { headers: authHeaders() });
      if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = product.Name.endsWith(".zip") ? product.Name : `${product.Name}.zip`;
      link.click();
      showError(null);
    } catch (error) {
      showError(describeFailure(error));
    } finally {
      button.disabled = false;
      button.textContent = `Download (${formatSize(product.ContentLength)})`;
    }
  });
  return button;
}

async function renderLineage(view: HTMLElement, base: string): Promise<void> {
  const box = view.querySelector("#lineage");
  if (!box) return;
  const parts: HTMLElement[] = [heading(3, "Lineage")];
  for (const [relation, label] of [
    ["Inputs", "Made from"],
    ["Outputs", "Used to make"],
  ]) {
    try {
      const page = await getJson<Page>(`${base}/${relation}`);
      parts.push(paragraph(`${label}: ${page.value.length ? "" : "nothing recorded"}`));
      if (page.value.length) {
        const list = document.createElement("ul");
        list.dataset.relation = relation;
        for (const other of page.value) {
          const item = document.createElement("li");
          const link = document.createElement("a");
          link.href = searchToUrl(search, other.Id) || "?";
          link.textContent = other.Name;
          link.addEventListener("click", (event) => {
            event.preventDefault();
            navigate(other.Id);
          });
          item.append(link);
          list.append(item);
        }
        parts.push(list);
      }
    } catch (error) {
      parts.push(paragraph(`${label}: not available (${describeFailure(error)})`));
    }
  }
  box.replaceChildren(...parts);
}

// -- product types from the catalog ---------------------------------------------------------------

interface Collection {
  id: string;
  summaries?: { "product:type"?: string[] };
}

async function loadProductTypes(): Promise<void> {
  if (!config.stac) return;
  try {
    const body = await getJson<{ collections: Collection[] }>(`${config.stac}/collections`);
    const byMission = new Map<string, Set<string>>();
    for (const collection of body.collections) {
      const mission = Object.keys(MISSIONS).find((m) => collection.id.startsWith(`sentinel-${m[1]}-`));
      if (!mission) continue; // a mission's own collection: its types come with theirs
      for (const type of collection.summaries?.["product:type"] ?? []) {
        byMission.set(mission, (byMission.get(mission) ?? new Set()).add(type));
      }
    }
    const fill = (): void => {
      const mission = field<HTMLSelectElement>("mission").value;
      const types = [...byMission.entries()].filter(([m]) => !mission || m === mission).flatMap(([, t]) => [...t]);
      $("types").replaceChildren(
        ...[...new Set(types)].sort().map((type) => Object.assign(document.createElement("option"), { value: type })),
      );
    };
    fill();
    field<HTMLSelectElement>("mission").addEventListener("change", fill);
  } catch (error) {
    // The list is a help: typing a type still works. Say why it is empty.
    field<HTMLInputElement>("type").placeholder = `any (types unavailable: ${describeFailure(error)})`;
  }
}

// -- account ----------------------------------------------------------------------------------------

function renderAccount(): void {
  const box = $("account");
  box.replaceChildren();
  if (!config.oidc) return;
  const oidc = config.oidc;
  const button = document.createElement("button");
  button.type = "button";
  button.id = currentToken() ? "logout" : "login";
  button.textContent = currentToken() ? "Log out" : "Log in";
  button.addEventListener("click", () => {
    if (currentToken()) {
      logout();
      renderAccount();
    } else login(oidc).catch((error: Error) => showError(`login failed: ${error.message}`));
  });
  if (currentToken()) box.append(Object.assign(document.createElement("span"), { textContent: "Logged in " }));
  box.append(button);
}

// -- start ------------------------------------------------------------------------------------------

async function start(): Promise<void> {
  config = await (await fetch("/config.json", { cache: "no-cache" })).json();
  if (config.oidc) {
    try {
      const returnTo = await completeLogin(config.oidc);
      if (returnTo !== null) history.replaceState(null, "", `${location.pathname}${returnTo}`);
    } catch (error) {
      showError((error as Error).message);
      history.replaceState(null, "", location.pathname);
    }
  }
  renderAccount();
  fmap = new FootprintMap($("map"), (id) => {
    const item = document.querySelector<HTMLElement>(`#results li[data-product="${id}"] a`);
    if (item && !$("results-view").hidden) item.focus();
    else navigate(id);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = readForm();
    if (!next) return;
    search = next;
    navigate();
  });
  $("reset").addEventListener("click", () => {
    history.pushState(null, "", location.pathname);
    void route();
  });
  $("draw").addEventListener("click", () => {
    const button = $("draw");
    if (button.getAttribute("aria-pressed") === "true") {
      fmap.stopDrawing(null);
      return;
    }
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Drawing: drag on the map (Esc cancels)";
    fmap.startDrawing((box: BBox | null) => {
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Draw area on the map";
      if (!box) return;
      field<HTMLInputElement>("bbox").value = box.join(",");
      form.requestSubmit();
    });
  });
  $("clear-area").addEventListener("click", () => {
    field<HTMLInputElement>("bbox").value = "";
    form.requestSubmit();
  });
  $("next").addEventListener("click", () => {
    const url = $("next").dataset.url;
    if (!url) return;
    offset += current.length;
    pages.push(url);
    void loadPage(url, true);
  });
  $("previous").addEventListener("click", () => {
    if (pages.length <= 1) return;
    pages.pop();
    offset = Math.max(0, offset - search.size);
    void loadPage(pages[pages.length - 1], true);
  });
  window.addEventListener("popstate", () => void route());
  (window as unknown as { refsys: unknown }).refsys = { map: fmap.map }; // for tests and the curious
  await route();
  void fmap.loadBaseMap();
  void loadProductTypes();
}

start().catch((error: Error) => showError(`the client could not start: ${error.message}`));
