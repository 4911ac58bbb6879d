"""The OData service over an in-memory catalog: documents, options, errors, downloads, access control,
and fuzzed ``$filter`` strings that must never give a 500."""

from __future__ import annotations

import dataclasses
import io
import time
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import flask
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from shared.catalog import CatalogStore, CatalogUnavailable, open_catalog, product_id
from shared.catalog.odata.auth import TokenVerifier
from shared.catalog.odata.grammar import GRAMMAR
from shared.catalog.odata.options import decode_skiptoken, encode_skiptoken, parse_options
from shared.catalog.odata.service import ODataService
from shared.security.access import AccessPolicy
from shared.settings import Settings
from shared.storage.objects import ObjectStore
from tests.fixtures.catalog import T0, entry


@pytest.fixture
def store() -> Iterator[CatalogStore]:
    catalog = open_catalog("sqlite:///:memory:")
    catalog.upsert_many([entry(f"S1A_PRODUCT_{i}.SAFE", publication_time=T0 + timedelta(minutes=i)) for i in range(5)])
    try:
        yield catalog
    finally:
        catalog.close()


def client_for(service: ODataService) -> Any:
    app = flask.Flask(__name__)
    app.add_url_rule("/", "root", lambda: service.handle(flask.request), methods=["GET", "POST", "DELETE"])
    app.add_url_rule(
        "/<path:path>", "odata", lambda path: service.handle(flask.request), methods=["GET", "POST", "DELETE"]
    )
    return app.test_client()


@pytest.fixture
def client(store: CatalogStore) -> Any:
    return client_for(ODataService(lambda: store, lambda: None))


# -- documents ----------------------------------------------------------------------------------


def test_service_document_and_metadata(client: Any) -> None:
    assert client.get("/odata/v1").get_json()["value"] == [
        {"name": "Products", "kind": "EntitySet", "url": "Products"},
        {"name": "Subscriptions", "kind": "EntitySet", "url": "Subscriptions"},
    ]
    metadata = client.get("/odata/v1/$metadata")
    assert metadata.mimetype == "application/xml"
    text = metadata.get_data(as_text=True)
    assert 'Namespace="OData.CSC"' in text and '<EntityType Name="Product" HasStream="true">' in text
    for name in (
        "StringAttribute",
        "IntegerAttribute",
        "DoubleAttribute",
        "DateTimeOffsetAttribute",
        "BooleanAttribute",
    ):
        assert f'Name="{name}"' in text


def test_product_json_has_the_icd_fields(client: Any) -> None:
    product = client.get("/odata/v1/Products?$top=1").get_json()["value"][0]
    assert {
        "Id", "Name", "ContentType", "ContentLength", "OriginDate", "PublicationDate", "ModificationDate",
        "EvictionDate", "Online", "Checksum", "ContentDate", "Footprint", "GeoFootprint",
    } <= set(product)  # fmt: skip
    assert product["ContentDate"] == {"Start": "2024-05-01T00:00:00.000Z", "End": "2024-05-01T00:00:25.000Z"}
    assert product["GeoFootprint"]["type"] == "Polygon"


def test_integer_attributes_beyond_64_bits_are_written_exactly(store: CatalogStore) -> None:
    store.upsert(entry("S1A_BIG_ORBIT.SAFE", attributes={"productType": "IW_GRDH_1S", "orbitNumber": 2**70}))
    client = client_for(ODataService(lambda: store, lambda: None))
    product = client.get("/odata/v1/Products?$filter=Name eq 'S1A_BIG_ORBIT.SAFE'&$expand=Attributes").get_json()
    orbit = [a for a in product["value"][0]["Attributes"] if a["Name"] == "orbitNumber"]
    assert orbit == [
        {"@odata.type": "#OData.CSC.IntegerAttribute", "Name": "orbitNumber", "Value": 2**70, "ValueType": "Integer"}
    ]


# -- options ------------------------------------------------------------------------------------


def test_top_defaults_to_and_is_clamped_at_1000() -> None:
    assert parse_options({}).top == 1000
    assert parse_options({"$top": "5000"}).top == 1000
    assert parse_options({"$top": "0"}).top == 0


def test_top_skip_and_next_link(client: Any) -> None:
    body = client.get("/odata/v1/Products?$top=2&$skip=1").get_json()
    assert [p["Name"] for p in body["value"]] == ["S1A_PRODUCT_1.SAFE", "S1A_PRODUCT_2.SAFE"]
    next_link = body["@odata.nextLink"]
    assert "$skip=" not in next_link and "$top=2" in next_link and "$skiptoken=" in next_link
    last = client.get(next_link.removeprefix("http://localhost")).get_json()
    assert [p["Name"] for p in last["value"]] == ["S1A_PRODUCT_3.SAFE", "S1A_PRODUCT_4.SAFE"]
    assert "@odata.nextLink" not in last


def test_orderby_several_keys(client: Any) -> None:
    names = [
        p["Name"]
        for p in client.get("/odata/v1/Products?$orderby=ContentLength asc,PublicationDate desc").get_json()["value"]
    ]
    assert names == [f"S1A_PRODUCT_{i}.SAFE" for i in (4, 3, 2, 1, 0)]


def test_skiptoken_is_bound_to_its_order() -> None:
    order = parse_options({"$orderby": "ContentLength desc"}).order
    token = encode_skiptoken(order, (5, "N"))
    assert decode_skiptoken(token, order) == (5, "N")
    with pytest.raises(Exception, match="another \\$orderby"):
        decode_skiptoken(token, parse_options({}).order)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("$top=-1", "$top must be a non-negative integer"),
        ("$skip=x", "$skip must be a non-negative integer"),
        ("$orderby=Footprint", "$orderby on 'Footprint'"),
        ("$orderby=Name sideways", "is not '<property> [asc|desc]'"),
        ("$count=maybe", "$count must be true or false"),
        ("$expand=Nodes", "$expand 'Nodes'"),
        ("$select=Secret", "$select 'Secret'"),
        ("$skiptoken=garbage!", "$skiptoken"),
        ("$search=x", "unknown query option"),
        ("$format=xml", "only json"),
        ("$filter=" + quote("Name eq"), "ends too early"),
    ],
)
def test_bad_options_are_400_in_the_odata_error_format(client: Any, query: str, says: str) -> None:
    response = client.get("/odata/v1/Products?" + query)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"} and says in error["message"]


def test_unknown_ids_and_paths_are_404_and_writes_405(client: Any) -> None:
    assert client.get(f"/odata/v1/Products({product_id('x')})").status_code == 404
    assert client.get("/odata/v1/Products(not-a-guid)").status_code == 404
    assert client.get("/odata/v1/Nodes").status_code == 404
    assert client.get("/elsewhere").status_code == 404
    assert client.delete("/odata/v1/Products").status_code == 405
    assert client.get("/odata/v1/Products/OData.CSC.FilterList").status_code == 405
    bad = client.post("/odata/v1/Products/OData.CSC.FilterList", json={"FilterProducts": "x"})
    assert bad.status_code == 400


def test_a_catalog_that_is_down_answers_503() -> None:
    def down() -> CatalogStore:
        raise CatalogUnavailable("connection refused")

    response = client_for(ODataService(down, lambda: None)).get("/odata/v1/Products")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "CatalogUnavailable"


# -- fuzzing: never a 500 -------------------------------------------------------------------------

_PIECES = [
    "Name", "eq", "ne", "gt", "and", "or", "not", "in", "(", ")", ",", "'x'", "'", "''", "1", "-2.5e3", "true",
    "null", "contains(", "startswith(Name,", "ContentDate/Start", "2024-01-01T00:00:00Z", "2024-13-45",
    "Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'p' and a/Value eq ", "a/Value", "att:",
    "OData.CSC.Intersects(area=", "geography'SRID=4326;POLYGON((0 0, 1 0, 1 1, 0 0))'", "geography'POINT(", "/",
    "Collection/Name", "Online", "$", "%", "\\", "\u00e9", "\x00", " ",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(st.sampled_from(_PIECES), max_size=14).map(" ".join), st.text(max_size=60)))
def test_fuzzed_filters_never_give_500(client: Any, text: str) -> None:
    response = client.get("/odata/v1/Products?$filter=" + quote(text, safe=""))
    assert response.status_code in (200, 400), (text, response.get_data(as_text=True))
    if response.status_code == 400:
        assert response.get_json()["error"]["message"]


def test_the_grammar_is_lalr_and_loads() -> None:
    assert "?start" in GRAMMAR


# -- downloads ------------------------------------------------------------------------------------


class RecordingStore(ObjectStore):
    """The real port on moto, remembering the expiry each presigned URL was asked with."""

    expiries: list[int]

    def presigned_get(self, bucket: str, key: str, expires_in: int = 3600) -> str:
        self.expiries.append(expires_in)
        return super().presigned_get(bucket, key, expires_in)


@pytest.fixture
def objects() -> Iterator[RecordingStore]:
    with mock_aws():
        store = RecordingStore(Settings(s3_access_key="testing", s3_secret_key="testing"))
        store.expiries = []
        store.ensure_bucket("rs-l1")
        yield store


def test_single_object_download_is_a_307_to_a_presigned_url(store: CatalogStore, objects: RecordingStore) -> None:
    single = entry("S1A_SINGLE.zip", key="S1A_SINGLE.zip", quicklooks=("ql/S1A_SINGLE_bwi.png",))
    store.upsert(single)
    objects.put("rs-l1", "S1A_SINGLE.zip", b"zipped")
    service = ODataService(lambda: store, lambda: objects, download_expiry_seconds=120)
    response = client_for(service).get(f"/odata/v1/Products({single.id})/$value")
    assert response.status_code == 307
    assert "/rs-l1/S1A_SINGLE.zip?" in response.headers["Location"] and objects.expiries == [120]
    assert response.headers["Content-Disposition"] == 'attachment; filename="S1A_SINGLE.zip"'
    quicklook = client_for(service).get(f"/odata/v1/Products({single.id})/Quicklooks('S1A_SINGLE_bwi.png')/$value")
    assert quicklook.status_code == 307 and "ql/S1A_SINGLE_bwi.png" in quicklook.headers["Location"]
    assert client_for(service).get(f"/odata/v1/Products({single.id})/Quicklooks('other.png')/$value").status_code == 404


def test_directory_product_streams_as_a_zip_without_a_stored_copy(store: CatalogStore, objects: ObjectStore) -> None:
    product = entry("S1A_DIR.SAFE")
    store.upsert(product)
    files = {"manifest.safe": b"<xfdu/>", "measurement/s1a.tiff": b"\x01" * 3_000_000}
    for path, data in files.items():
        objects.put("rs-l1", f"{product.key}{path}", data)
    before = {o.key for o in objects.list("rs-l1")}
    response = client_for(ODataService(lambda: store, lambda: objects)).get(f"/odata/v1/Products({product.id})/$value")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="S1A_DIR.SAFE.zip"'
    assert response.is_streamed
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == {
            f"S1A_DIR.SAFE/{path}": data for path, data in files.items()
        }
    assert {o.key for o in objects.list("rs-l1")} == before


def test_offline_products_answer_410(store: CatalogStore) -> None:
    offline = entry("S1A_GONE.SAFE", online=False, eviction_time=T0)
    store.upsert(offline)
    response = client_for(ODataService(lambda: store, lambda: None)).get(f"/odata/v1/Products({offline.id})/$value")
    assert response.status_code == 410 and "offline" in response.get_json()["error"]["message"]


# -- access control -------------------------------------------------------------------------------

ISSUER = "https://issuer.test/realms/refsys"


@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any]:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), rsa.generate_private_key(
        public_exponent=65537, key_size=2048
    )


def token(key: Any, **claims: Any) -> str:
    body = {"iss": ISSUER, "aud": "refsys-odata", "exp": int(time.time()) + 300, "sub": "user"}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256", headers={"kid": "k1"})


def test_with_an_issuer_every_request_needs_a_valid_bearer_token(store: CatalogStore, keys: tuple[Any, Any]) -> None:
    good, other = keys
    verifier = TokenVerifier(ISSUER, "refsys-odata", lambda _token: good.public_key())
    client = client_for(ODataService(lambda: store, lambda: None, access=AccessPolicy(verifier)))

    def status(authorization: str | None) -> int:
        headers = {"Authorization": authorization} if authorization else {}
        return int(client.get("/odata/v1/Products", headers=headers).status_code)

    assert status(f"Bearer {token(good, roles=['viewer'])}") == 200
    assert status(f"Bearer {token(good)}") == 403  # valid, but no role
    assert status(None) == 401
    assert status("Basic dXNlcjpwYXNz") == 401
    assert status(f"Bearer {token(other)}") == 401  # signed by another key
    assert status(f"Bearer {token(good, exp=int(time.time()) - 60)}") == 401
    assert status(f"Bearer {token(good, aud='someone-else')}") == 401
    assert status(f"Bearer {token(good, iss='https://evil.test')}") == 401
    assert status(f"Bearer {token(good, exp=None)}") == 401
    # HS256 with the public key as the secret (algorithm confusion) is refused.
    response = client.get("/odata/v1/Products", headers={"Authorization": "Bearer " + token(good)[:-4] + "AAAA"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_product_download_needs_the_downloader_role_and_metadata_the_viewer_role(
    store: CatalogStore, objects: RecordingStore, keys: tuple[Any, Any]
) -> None:
    good, _ = keys
    product = entry("S1A_SINGLE.zip", key="S1A_SINGLE.zip")
    store.upsert(product)
    objects.put("rs-l1", "S1A_SINGLE.zip", b"zipped")
    verifier = TokenVerifier(ISSUER, "refsys-odata", lambda _token: good.public_key())
    client = client_for(ODataService(lambda: store, lambda: objects, access=AccessPolicy(verifier)))

    def status(path: str, *roles: str) -> int:
        headers = {"Authorization": f"Bearer {token(good, roles=list(roles))}"}
        return int(client.get(path, headers=headers).status_code)

    value, metadata = f"/odata/v1/Products({product.id})/$value", f"/odata/v1/Products({product.id})"
    assert status(value, "viewer") == 403
    assert status(value, "operator") == 403
    assert status(metadata, "viewer") == 200
    assert status(metadata, "downloader") == 200  # a downloader finds what it downloads
    assert status(f"{metadata}/Attributes", "admin") == 200
    assert status(value, "downloader") == 307
    assert status(value, "admin") == 307


def test_without_an_issuer_the_api_is_open(client: Any) -> None:
    assert client.get("/odata/v1/Products").status_code == 200


def test_the_function_target_serves_healthz_and_products(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from shared import ports
    from shared.settings import get_settings

    monkeypatch.setenv("REFSYS_CATALOG_URL", f"sqlite:///{tmp_path / 'c.db'}")
    for cached in (get_settings, ports.catalog):
        cached.cache_clear()
    import functions.odata.main as main

    main._service.cache_clear()
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:path>", "f", lambda path: main.odata(flask.request))
    try:
        client = app.test_client()
        assert client.get("/healthz").get_json() == {"status": "ok"}
        assert client.get("/odata/v1/Products").get_json()["value"] == []
    finally:
        ports.catalog().close()
        for clear in (get_settings.cache_clear, ports.catalog.cache_clear):
            clear()
        main._service.cache_clear()


def test_entries_keep_availability_and_quicklooks(store: CatalogStore) -> None:
    changed = dataclasses.replace(
        entry("S1A_PRODUCT_0.SAFE"), online=False, eviction_time=T0 + timedelta(days=7), quicklooks=("a.png",)
    )
    store.upsert(changed)
    assert store.get(changed.id) == changed
