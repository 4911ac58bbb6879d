"""The map client in a real browser (Debian's chromium driven by Playwright) against the embedded platform,
with the team's samples re-inflated and uploaded: Sentinel-1 over Europe, a Sentinel-2 tile split by the
antimeridian (T01KAB, Fiji), a Sentinel-3 granule up to the North Pole, and the rest of the samples.

What the browser shows is checked against what the OData API says and against the footprints themselves:
the list of a search, the footprints drawn (their SVG paths' pixels turned back into degrees by the map),
paging, the product page, the download link, the keyboard. Screenshots go to ``tests-artifacts/web``
(or ``$REFSYS_TEST_ARTIFACTS/web``), with the first-paint figures of the opening page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask
import jwt
import pytest
import requests
from playwright import sync_api as playwright_api
from shapely.geometry import box, shape

from shared.ingestion.upload import upload_product
from shared.platform.embedded import REPO_ROOT, EmbeddedPlatform
from shared.products.reinflate import reinflate
from tests.e2e.test_platform import settled
from tests.e2e.test_real_products import good_products

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
EUROPE = (-10.0, 35.0, 30.0, 60.0)
EUROPE_SAMPLE = "S1B_IW_GRDH_1SDV_20210401T052623_20210401T052648_026269_032297_ECC8.SAFE"
FIJI_TILE = "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE"
POLAR = "S3A_OL_2_WFR____20210604T001016_20210604T001316_20210604T021918_0179_0"  # name starts so
TIMEOUT_MS = 20_000
DASH = "\u2013"  # the count reads "1<en dash>50 of N"


def artifacts() -> Path:
    root = Path(os.environ.get("REFSYS_TEST_ARTIFACTS", REPO_ROOT / "tests-artifacts")) / "web"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="module")
def catalog(platform: EmbeddedPlatform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every good sample uploaded and cataloged: name -> its OData Product (with GeoFootprint)."""
    samples = REPO_ROOT / ".." / "shared" / "samples"
    if not samples.is_dir():
        pytest.fail(f"the team's samples are expected at {samples}")
    good = good_products(tmp_path_factory.mktemp("products"), samples)
    expected = {name for names in good.values() for name in names}
    store, inbox = platform.object_store(), platform.settings.inbox_bucket
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda product: upload_product(store, inbox, product), good))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        products = all_products(platform)
        if expected <= products.keys() and settled(platform):
            return products
        time.sleep(1)
    pytest.fail(f"not cataloged after 300 s: {sorted(expected - all_products(platform).keys())[:5]}")


def odata(platform: EmbeddedPlatform) -> str:
    return str(platform.endpoints()["odata"])


def all_products(platform: EmbeddedPlatform) -> dict[str, dict[str, Any]]:
    answer = requests.get(f"{odata(platform)}/Products", params={"$top": "1000"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {product["Name"]: product for product in answer.json()["value"]}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        # As the PostgreSQL tests: skipped on a machine without it, a failure in CI (.ci/run installs it).
        missing = f"no {CHROMIUM}: apt-get install chromium"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, catalog: dict[str, dict[str, Any]]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


def web(platform: EmbeddedPlatform) -> str:
    return str(platform.endpoints()["web"]).rstrip("/")


def open_client(page: Any, platform: EmbeddedPlatform, query: str = "") -> None:
    page.goto(f"{web(platform)}/{query}")
    wait_for_results(page)


def wait_for_results(page: Any) -> None:
    page.wait_for_function("document.getElementById('count').textContent.includes(' of ')")
    page.wait_for_function("!document.getElementById('results').hasAttribute('aria-busy')")


def listed(page: Any) -> list[str]:
    return [str(name) for name in page.locator("#results li a").all_inner_texts()]


def drawn_bounds(page: Any) -> dict[str, list[float]]:
    """Each product's drawn footprint: its SVG path's pixel box, turned into degrees by the map itself."""
    settle(page)
    result: dict[str, list[float]] = page.evaluate(
        """() => {
        const map = window.refsys.map, frame = map.getContainer().getBoundingClientRect();
        const found = {};
        for (const path of document.querySelectorAll('path[data-product]')) {
          const r = path.getBoundingClientRect();
          const nw = map.containerPointToLatLng([r.left - frame.left, r.top - frame.top]);
          const se = map.containerPointToLatLng([r.right - frame.left, r.bottom - frame.top]);
          found[path.dataset.product] = [nw.lng, se.lat, se.lng, nw.lat];
        }
        return found;
      }"""
    )
    return result


def settle(page: Any) -> None:
    """Until the map's view stops moving (a fit animates), and a frame more for the paths' last update."""
    page.wait_for_function("!document.getElementById('map').dataset.moving")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def degrees_per_pixel(page: Any) -> float:
    return float(page.evaluate("() => { const m = window.refsys.map, b = m.getBounds(); "
                               "return (b.getEast() - b.getWest()) / m.getSize().x; }"))  # fmt: skip


def unwrapped_bounds(footprint: dict[str, Any]) -> tuple[float, float, float, float]:
    """The footprint's box, continuous across the antimeridian (east of 180 when split there)."""
    west, south, east, north = shape(footprint).bounds
    if west == -180 and east == 180:  # split at the antimeridian: the eastern part is drawn past 180
        polygons = footprint["coordinates"] if footprint["type"] == "MultiPolygon" else [footprint["coordinates"]]
        lons = [lon if lon > 0 or max(p[0] for p in poly[0]) > 0 else lon + 360 for poly in polygons
                for lon in (p[0] for p in poly[0])]  # fmt: skip
        west, east = min(lons), max(lons)
    return west, south, east, north


def assert_drawn_where_they_are(page: Any, products: list[dict[str, Any]]) -> None:
    drawn = drawn_bounds(page)
    pixel = degrees_per_pixel(page)
    # Leaflet clips each path to the view and a tenth of it around: a footprint larger than that is drawn to there.
    view_west, view_south, view_east, view_north = page.evaluate(
        "() => { const b = window.refsys.map.getBounds().pad(0.1); "
        "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }"
    )
    for product in products:
        # The stroke and whole pixels; a single position is a circle of radius 5 px around it.
        tolerance = (9 if product["GeoFootprint"]["type"] == "Point" else 4) * pixel + 0.01
        assert product["Id"] in drawn, f"{product['Name']} has no footprint drawn"
        west, south, east, north = unwrapped_bounds(product["GeoFootprint"])
        expected = (max(west, view_west), max(south, view_south), min(east, view_east), min(north, view_north))
        for got, want in zip(drawn[product["Id"]], expected, strict=True):
            assert abs(got - want) <= tolerance, f"{product['Name']}: drawn {drawn[product['Id']]}, is {expected}"


def sensing_overlaps(product: dict[str, Any], start: str, end: str) -> bool:
    content = product["ContentDate"]
    return content["End"] >= f"{start}T00:00:00.000Z" and content["Start"] < f"{end}T23:59:60"


def test_opened_without_a_search_it_lists_the_newest_products_and_draws_them(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    open_client(page, platform)
    page.wait_for_function("document.getElementById('map').dataset.basemap === 'loaded'")
    newest = sorted(catalog.values(), key=lambda p: (p["PublicationDate"], p["Id"]), reverse=True)[:50]
    assert page.locator("#count").inner_text() == f"1{DASH}50 of {len(catalog)} products"
    assert listed(page)[:1] == [newest[0]["Name"]]
    assert set(listed(page)) == {p["Name"] for p in newest}
    assert_drawn_where_they_are(page, [p for p in newest if p["GeoFootprint"]])
    paints = page.evaluate(
        "() => Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]))"
    )
    navigation = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
    figures = {"paint_ms": paints, "dom_content_loaded_ms": navigation["domContentLoadedEventEnd"],
               "load_ms": navigation["loadEventEnd"]}  # fmt: skip
    (artifacts() / "first-paint.json").write_text(json.dumps(figures, indent=2) + "\n")
    assert "first-contentful-paint" in paints  # the figure itself goes to the artifacts, not into an assertion
    page.screenshot(path=artifacts() / "newest.png")


def test_a_search_over_europe_by_area_and_dates_lists_and_draws_the_products_there(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    open_client(page, platform)
    page.get_by_label("Box: west, south, east, north").fill(",".join(str(v) for v in EUROPE))
    page.get_by_label("From").fill("2021-01-01")
    page.get_by_label("To").fill("2021-12-31")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url("**bbox=*")
    wait_for_results(page)
    area = box(*EUROPE)
    expected = [p for p in catalog.values()
                if p["GeoFootprint"] and shape(p["GeoFootprint"]).intersects(area)
                and sensing_overlaps(p, "2021-01-01", "2021-12-31")]  # fmt: skip
    assert len(expected) >= 3  # the S1 products over France and the Alps in 2021
    assert sorted(listed(page)) == sorted(p["Name"] for p in expected)
    assert page.locator("#count").inner_text() == f"1{DASH}{len(expected)} of {len(expected)} products"
    assert "start=2021-01-01" in page.url and "end=2021-12-31" in page.url
    page.wait_for_function("document.getElementById('map').dataset.basemap === 'loaded'")
    assert_drawn_where_they_are(page, expected)
    page.screenshot(path=artifacts() / "europe.png")

    # The URL holds the search: opened again from it, the same list.
    shared_url = page.url
    page.goto("about:blank")
    page.goto(shared_url)
    wait_for_results(page)
    assert sorted(listed(page)) == sorted(p["Name"] for p in expected)
    assert page.get_by_label("From").input_value() == "2021-01-01"


def test_an_area_drawn_across_the_antimeridian_finds_the_products_there(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    open_client(page, platform)
    settle(page)
    page.evaluate("() => { window.refsys.map.setView([-17, 180], 4, {animate: false}); }")
    settle(page)
    corners = page.evaluate(
        """() => {
        const map = window.refsys.map, frame = map.getContainer().getBoundingClientRect();
        const at = (lat, lng) => {
          const p = map.latLngToContainerPoint([lat, lng]);
          return [p.x + frame.left, p.y + frame.top];
        };
        return [at(-10, 172), at(-25, 188)];
      }"""
    )
    page.get_by_role("button", name="Draw area on the map").click()
    (x1, y1), (x2, y2) = corners
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move(x2, y2, steps=8)
    page.mouse.up()
    page.wait_for_url("**bbox=*")
    wait_for_results(page)
    west, south, east, north = (
        float(v) for v in page.get_by_label("Box: west, south, east, north").input_value().split(",")
    )
    assert west > east  # across the antimeridian: west 172, east -172
    assert abs(west - 172) < 0.5 and abs(east + 172) < 0.5 and abs(south + 25) < 0.5 and abs(north + 10) < 0.5
    area = box(west, south, 180, north).union(box(-180, south, east, north))
    expected = [p for p in catalog.values() if p["GeoFootprint"] and shape(p["GeoFootprint"]).intersects(area)]
    assert FIJI_TILE in {p["Name"] for p in expected}
    assert sorted(listed(page)) == sorted(p["Name"] for p in expected)
    # The split tile is drawn whole, around 180°, not as two slivers at the edges of the world.
    assert_drawn_where_they_are(page, [catalog[FIJI_TILE]])
    fiji = drawn_bounds(page)[catalog[FIJI_TILE]["Id"]]
    assert fiji[0] < 180 < fiji[2]
    page.screenshot(path=artifacts() / "antimeridian.png")


def test_a_footprint_up_to_the_pole_is_drawn_up_to_the_pole(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    polar = next(p for name, p in catalog.items() if name.startswith(POLAR))
    open_client(page, platform, "?bbox=-180,80,180,90&mission=S3")
    assert polar["Name"] in listed(page)
    assert_drawn_where_they_are(page, [polar])
    assert drawn_bounds(page)[polar["Id"]][3] > 89.5
    page.screenshot(path=artifacts() / "north-pole.png")


def test_pages_follow_the_next_links_in_the_chosen_order(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    assert len(catalog) > 40
    by_name = sorted(catalog)
    requests_made: list[str] = []
    page.on("request", lambda request: requests_made.append(request.url) if "/odata/v1/" in request.url else None)
    open_client(page, platform, "?sort=name&size=20")
    assert listed(page) == by_name[:20]
    page.get_by_role("button", name="Next page").click()
    page.wait_for_function(f"document.getElementById('count').textContent.startsWith('21{DASH}')")
    assert listed(page) == by_name[20:40]
    assert page.locator("#count").inner_text() == f"21{DASH}40 of {len(catalog)} products"
    assert any("%24skiptoken" in url or "$skiptoken" in url for url in requests_made)  # the API's nextLink
    page.get_by_role("button", name="Previous page").click()
    page.wait_for_function(f"document.getElementById('count').textContent.startsWith('1{DASH}')")
    assert listed(page) == by_name[:20]
    # One request per page of results: the footprints come in the list's answer.
    assert len([url for url in requests_made if "/Products?" in url or "skiptoken" in url]) == 3


def test_a_products_page_shows_its_attributes_quicklook_lineage_and_download(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    name = next(n for n in catalog if n.startswith("S1B_IW_GRDH_1SDV_20210401"))
    open_client(page, platform, f"?name={name[:40]}")
    page.get_by_role("link", name=name).click()
    page.wait_for_url(f"**product={catalog[name]['Id']}*")
    heading = page.get_by_role("heading", name=name)
    heading.wait_for()
    assert page.evaluate("() => document.activeElement.id") == "product-heading"
    view = page.locator("#product-view")
    assert "platformShortName" in view.inner_text() and "SENTINEL-1" in view.inner_text()
    # The samples' quicklooks are stand-in bytes (the reduced samples lack the PNG): the image is the product's
    # asset, fetched through the API's redirect, and the page says it cannot show it.
    assets = requests.get(
        f"{odata(platform)}/Products({catalog[name]['Id']})", params={"$expand": "Assets"}, timeout=30
    )
    (asset,) = assets.json()["Assets"]
    quicklook = view.locator(".quicklooks img")
    assert quicklook.get_attribute("src") == asset["DownloadLink"]
    assert quicklook.get_attribute("alt") == f"Quicklook of {name}"
    assert requests.get(asset["DownloadLink"], timeout=30).status_code == 200  # 307 to the object, then 200
    page.wait_for_function("() => { const i = document.querySelector('.quicklooks img'); return i.naturalWidth > 0 || "
                           "document.querySelector('.quicklooks figcaption'); }")  # fmt: skip
    page.wait_for_function("document.getElementById('lineage').textContent.includes('Made from')")
    assert "Made from: nothing recorded" in view.inner_text()  # nothing processed in this run
    link = page.locator("#download")
    href = link.get_attribute("href")
    assert href == f"{odata(platform)}/Products({catalog[name]['Id']})/$value"
    answer = requests.get(href, stream=True, allow_redirects=False, timeout=30)
    assert answer.status_code in (200, 307)
    answer.close()
    page.screenshot(path=artifacts() / "product.png")
    page.get_by_role("button", name="← Back to the results").click()
    page.locator("#results-view").wait_for()
    assert listed(page) == [name]


def test_the_client_is_usable_with_the_keyboard_alone(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    open_client(page, platform)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to the results"
    page.keyboard.press("Tab")  # the first field: the mission
    assert page.evaluate("() => document.activeElement.id") == "mission"
    page.keyboard.press("Tab")
    page.keyboard.type("IW_GRDH_1S")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_url("**type=IW_GRDH_1S*")
    wait_for_results(page)
    expected = [n for n, p in catalog.items() if "_IW_GRDH_1S" in n]
    assert sorted(listed(page)) == sorted(expected)
    page.locator("#results-heading").focus()  # where a search leaves the focus, as Enter did
    page.keyboard.press("Tab")
    first = listed(page)[0]
    assert page.evaluate("() => document.activeElement.textContent") == first
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=first).wait_for()
    assert page.evaluate("() => document.activeElement.id") == "product-heading"
    page.go_back()
    page.locator("#results-view").wait_for()
    assert sorted(listed(page)) == sorted(expected)


def test_product_types_come_from_the_catalog_and_cloud_cover_selects_optical_products(
    page: Any, platform: EmbeddedPlatform, catalog: dict[str, dict[str, Any]]
) -> None:
    open_client(page, platform)
    page.get_by_label("Mission").select_option("S1")
    page.wait_for_function("document.querySelectorAll('#types option').length > 0")
    offered = set(page.eval_on_selector_all("#types option", "options => options.map(o => o.value)"))
    assert {"IW_GRDH_1S", "IW_SLC__1S"} <= offered and not any(t.startswith("S2") for t in offered)
    # Cloud cover at most 50 %: exactly the products whose cloudCover attribute says so.
    with_cover = requests.get(
        f"{odata(platform)}/Products", params={"$top": "1000", "$expand": "Attributes"}, timeout=30
    ).json()["value"]
    expected = sorted(
        p["Name"] for p in with_cover for a in p["Attributes"] if a["Name"] == "cloudCover" and a["Value"] <= 50
    )
    assert expected  # the samples' Sentinel-2 and -3 optical products carry one
    open_client(page, platform, "?cloud=50")
    assert sorted(listed(page)) == expected


def test_an_api_refusal_is_shown_with_the_apis_message(page: Any, platform: EmbeddedPlatform) -> None:
    page.goto(f"{web(platform)}/?product=00000000-0000-0000-0000-000000000000")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().startswith("The API refused: 404")
    assert "00000000-0000-0000-0000-000000000000" in alert.inner_text()


def test_the_platform_logged_no_traceback_and_answered_no_5xx(platform: EmbeddedPlatform) -> None:
    for log in (platform.data_dir / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"a traceback in {log.name}: {text[text.find('Traceback') - 500 :][:3000]}"
        for line in text.splitlines():
            if line.startswith("{") and '"status"' in line:
                record = json.loads(line)
                assert not str(record.get("status", "")).startswith("5"), f"{log.name}: {line}"


# -- login with an OIDC issuer (authorization code + PKCE) ------------------------------------------------


class Issuer:
    """A small real OIDC issuer on loopback: discovery, JWKS, an authorization endpoint that approves at once
    (no login form) and a token endpoint that checks the PKCE verifier, as a public client's issuer does."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm
        from werkzeug.serving import make_server

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = {**json.loads(RSAAlgorithm.to_jwk(self.key.public_key())), "kid": "k1", "use": "sig", "alg": "RS256"}
        self.codes: dict[str, dict[str, str]] = {}
        self.exchanged: list[dict[str, str]] = []
        app = flask.Flask("issuer")
        app.add_url_rule("/.well-known/openid-configuration", view_func=self.discovery)
        app.add_url_rule("/jwks", view_func=lambda: self.cors(flask.jsonify({"keys": [self.jwk]})))
        app.add_url_rule("/authorize", view_func=self.authorize)
        app.add_url_rule("/token", view_func=self.token, methods=["POST"])
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def cors(response: flask.Response) -> flask.Response:
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    def discovery(self) -> flask.Response:
        return self.cors(flask.jsonify({
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "code_challenge_methods_supported": ["S256"]}))  # fmt: skip

    def authorize(self) -> flask.Response:
        args = flask.request.args
        assert args["response_type"] == "code" and args["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {k: args[k] for k in ("client_id", "redirect_uri", "code_challenge")}
        query = urlencode({"code": code, "state": args["state"]})
        return flask.redirect(f"{args['redirect_uri']}?{query}", code=302)

    def mint(self, **claims: Any) -> str:
        body = {"iss": self.url, "aud": "refsys-web", "sub": "test", "exp": int(time.time()) + 600, **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})

    def token(self) -> flask.Response:
        form = flask.request.form
        grant = self.codes.pop(form["code"], None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant is None or grant["code_challenge"] != challenge or grant["redirect_uri"] != form["redirect_uri"]:
            return self.cors(flask.make_response(flask.jsonify({"error": "invalid_grant"}), 400))
        self.exchanged.append(dict(form))
        token = self.mint(aud=grant["client_id"], sub="ada", roles=["viewer", "downloader"])
        return self.cors(flask.jsonify({"access_token": token, "token_type": "Bearer", "expires_in": 600}))


@pytest.fixture(scope="module")
def secured_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedPlatform, Issuer]]:
    """A second platform, with OIDC on: every API request needs a token of the issuer (viewer; $value downloader)."""
    issuer = Issuer()
    environment = {"REFSYS_OIDC_ISSUER": issuer.url, "REFSYS_OIDC_AUDIENCE": "refsys-web"}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the platform's functions inherit it
    running = EmbeddedPlatform(tmp_path_factory.mktemp("secured"))
    try:
        running.start()
        yield running, issuer
    finally:
        running.stop(storage_timeout=3.0)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        issuer.server.shutdown()


def test_with_oidc_the_client_logs_in_with_pkce_and_sends_the_token(
    browser: Any, secured_platform: tuple[EmbeddedPlatform, Issuer], tmp_path: Path
) -> None:
    platform, issuer = secured_platform
    sample = REPO_ROOT / ".." / "shared" / "samples" / "sentinel1" / EUROPE_SAMPLE
    product = reinflate(sample, tmp_path)
    upload_product(platform.object_store(), platform.settings.inbox_bucket, product)
    bearer = {"Authorization": f"Bearer {issuer.mint(roles=['viewer'])}"}
    url, query = f"{odata(platform)}/Products", {"$filter": f"Name eq '{product.name}'"}
    deadline = time.monotonic() + 120
    while not (found := requests.get(url, params=query, headers=bearer, timeout=30).json().get("value")):
        assert time.monotonic() < deadline, "the product was not cataloged in 120 s"
        time.sleep(0.5)

    context = browser.new_context(viewport={"width": 1360, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{web(platform)}/")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().startswith("The API refused: 401")  # no token yet: the API's own words
    page.get_by_role("button", name="Log in").click()  # to the issuer, and back with a code
    page.get_by_role("button", name="Log out").wait_for()
    (exchange,) = issuer.exchanged
    assert exchange["client_id"] == "refsys-web" and len(exchange["code_verifier"]) >= 43  # RFC 7636
    wait_for_results(page)
    assert listed(page) == [product.name]
    page.get_by_role("link", name=product.name).click()
    page.get_by_role("heading", name=product.name).wait_for()
    with page.expect_download() as download:
        page.locator("#download").click()  # fetched with the token (a link cannot carry it), then saved
    saved = Path(download.value.path())
    assert zipfile.is_zipfile(saved)
    assert saved.stat().st_size == found[0]["ContentLength"]
    page.screenshot(path=artifacts() / "logged-in.png")
    context.close()
