"""The PRIP OData v4 service at ``/odata/v1`` (reference production-common §4.2).

``GET  /odata/v1``                                   service document
``GET  /odata/v1/$metadata``                         CSDL (namespace OData.CSC)
``GET  /odata/v1/Products``                          query options: see ``options.py``
``GET  /odata/v1/Products/$count``                   the number of matching products, as text
``POST /odata/v1/Products/OData.CSC.FilterList``     {"FilterProducts": [{"Name": ...}, ...]}
``GET  /odata/v1/Products(<Id>)``                    one product ($expand, $select)
``GET  /odata/v1/Products(<Id>)/Attributes``         its typed attributes
``GET  /odata/v1/Products(<Id>)/Quicklooks``         its quicklooks; ``Quicklooks('<Image>')/$value``
``GET  /odata/v1/Products(<Id>)/Inputs`` / ``Outputs`` the products it was made from / that were made from it
``GET  /odata/v1/Products(<Id>)/$value``             download: 307 to a presigned URL, or a streamed zip (Range)
``GET  /odata/v1/Assets(<Id>)/$value``               a quicklook asset (``$expand=Assets``): 307 to the image
``/odata/v1/Subscriptions...``                       the CDSE Subscriptions API: ``shared/subscriptions/odata.py``

Errors: ``{"error": {"code", "message"}}`` — 400 bad filter or option (saying where, and which limit
of ``filter.py`` and ``options.py`` it passes) or a query the database finds too complex, 401 no valid
token, 403 a token without the role (viewer; downloader for a product's ``$value``) when an issuer is
configured, 404 unknown product, 410 offline, 503 catalog down.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import flask
import orjson

from shared.catalog.api import store_failure
from shared.catalog.errors import QueryTooComplex
from shared.catalog.filters import Selection, sort_value, total_order
from shared.catalog.model import CatalogEntry, ProductQuery
from shared.catalog.odata.entities import (
    METADATA,
    SERVICE_DOCUMENT,
    assets_json,
    attributes_json,
    product_json,
    quicklooks_json,
)
from shared.catalog.odata.errors import BadOption, MethodNotAllowed, NotFound, ODataError
from shared.catalog.odata.options import MAX_TOP, ProductsQuery, encode_skiptoken, parse_options
from shared.catalog.store import CatalogStore, CatalogUnavailable
from shared.responses import error_response
from shared.security.access import DOWNLOADER, VIEWER, AccessPolicy, Denied

if TYPE_CHECKING:
    from shared.catalog.archives import ArchiveStore
    from shared.processing.lineage import LineageStore

log = logging.getLogger(__name__)

BASE_PATH = "/odata/v1"
MAX_FILTER_LIST = 1000
# Products(<guid>) or Products('<guid>'), then an optional navigation.
_ENTITY = re.compile(r"^/Products\((?:'([^']*)'|([^()']*))\)(/.*)?$")
_QUICKLOOK = re.compile(r"^/Quicklooks\('((?:[^']|'')*)'\)(/\$value)?$")
_ASSET = re.compile(r"^/Assets\((?:'([^']*)'|([^()']*))\)(/\$value)?$")  # downloads: shared/catalog/archives.py


class ODataService:
    def __init__(
        self,
        catalog: Callable[[], CatalogStore],
        objects: Callable[[], Any],
        *,
        access: AccessPolicy | None = None,
        download_expiry_seconds: int = 600,
        lineage: Callable[[], LineageStore] | None = None,
        archives: Callable[[], ArchiveStore] | None = None,
    ) -> None:
        # Ports are callables: the object store (boto3, ~300 ms) is created only for a download.
        self._catalog = catalog
        self._objects = objects
        self._access = access
        self._expiry = download_expiry_seconds
        self._lineage = lineage
        self._archives = archives or _configured_archives

    def handle(self, request: flask.Request) -> flask.Response:
        try:
            if self._access is not None:
                self._access.require(request.headers.get("Authorization"), _role_for(request.path))
            return self._route(request)
        except Denied as exc:
            return exc.response()
        except ODataError as exc:
            response = error_response(exc.status, exc.code, exc.message)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        except (QueryTooComplex, CatalogUnavailable) as exc:
            return store_failure(exc, "the $filter")

    # -- routing ------------------------------------------------------------------------------

    def _route(self, request: flask.Request) -> flask.Response:
        path = request.path
        if not path.startswith(BASE_PATH):
            raise NotFound(f"no resource {path!r}; the OData service is at {BASE_PATH}")
        path = path[len(BASE_PATH) :].rstrip("/")
        if path == "/Products/OData.CSC.FilterList":
            if request.method != "POST":
                raise MethodNotAllowed('POST {"FilterProducts": [{"Name": ...}]} to OData.CSC.FilterList')
            return self._filter_list(request)
        if path == "/Subscriptions" or path.startswith(("/Subscriptions(", "/Subscriptions/")):
            from shared.subscriptions.odata import subscriptions_api  # built at the first such request

            return subscriptions_api().handle(request, path, self._access)
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{request.method} is not supported here; the catalog is read-only")
        args = _query_args(request)
        if path == "":
            return _json(SERVICE_DOCUMENT)
        if path == "/$metadata":
            return flask.Response(METADATA, mimetype="application/xml")
        if path == "/Products":
            return self._products(request, parse_options(args))
        if path == "/Products/$count":
            query = parse_options(args)
            return flask.Response(str(self._catalog().count_where(query.where)), mimetype="text/plain")
        if (asset := _ASSET.match(path)) is not None:
            return self._asset(asset[1] if asset[1] is not None else asset[2], bool(asset[3]), request)
        match = _ENTITY.match(path)
        if match is None:
            raise NotFound(f"no resource {request.path!r}; see {BASE_PATH}/$metadata")
        entry = self._entry(match[1] if match[1] is not None else match[2])
        return self._navigate(entry, match[3] or "", args, request)

    def _entry(self, key: str) -> CatalogEntry:
        entry = self._catalog().get(key.strip())
        if entry is None:
            raise NotFound(f"no product with Id {key!r}")
        return entry

    def _asset(self, asset_id: str, value: bool, request: flask.Request) -> flask.Response:
        from shared.catalog.odata import download  # downloads and archives at first use, not at every start

        asset = self._archives().asset(asset_id.strip())
        if asset is None:
            raise NotFound(f"no asset with Id {asset_id!r}")
        entry = self._catalog().get(asset.product_id)
        if value:
            return download.asset_value(asset, entry, self._objects(), self._expiry)
        if entry is None or asset.key not in entry.quicklooks:
            raise NotFound(f"asset {asset.id} belongs to no cataloged product any more")
        found = [a for a in assets_json(entry, _root(request)) if a["Id"] == asset.id]
        return _json({"@odata.context": "$metadata#Assets/$entity", **found[0]})

    def _navigate(self, entry: CatalogEntry, rest: str, args: dict[str, str], request: flask.Request) -> flask.Response:
        context = f"$metadata#Products({entry.id})"
        if rest == "":
            options = parse_options(args, collection=False)
            body = {"@odata.context": "$metadata#Products/$entity"}
            body.update(
                product_json(entry, select=options.select, expand=options.expand, root=_root(request), orjson_body=True)
            )
            return _json(body)
        if rest == "/$value":
            from shared.catalog.odata import download

            return download.product_value(
                entry, self._objects(), self._expiry, archives=self._archives(), headers=dict(request.headers)
            )
        if rest == "/Attributes":
            return _json({"@odata.context": f"{context}/Attributes", "value": attributes_json(entry)})
        if rest == "/Quicklooks":
            return _json({"@odata.context": f"{context}/Quicklooks", "value": quicklooks_json(entry)})
        if rest in ("/Inputs", "/Outputs") and self._lineage is not None:
            lineage = self._lineage()
            if rest == "/Inputs":
                names = (lineage.produced(entry.name) or {}).get("inputs", [])
            else:
                names = lineage.outputs_of(entry.name)
            found = self._catalog().search(ProductQuery(names=names, limit=max(len(names), 1))) if names else []
            value = sorted((product_json(e, orjson_body=True) for e in found), key=lambda p: str(p["Name"]))
            return _json({"@odata.context": "$metadata#Products", "value": value})
        quicklook = _QUICKLOOK.match(rest)
        if quicklook is not None:
            image = quicklook[1].replace("''", "'")
            if quicklook[2]:
                from shared.catalog.odata import download

                return download.quicklook_value(entry, image, self._objects(), self._expiry)
            if image not in {item["Image"] for item in quicklooks_json(entry)}:
                raise NotFound(f"product {entry.name} has no quicklook {image!r}")
            return _json({"@odata.context": f"{context}/Quicklooks/$entity", "Image": image})
        raise NotFound(f"no resource {rest!r} of a product; see {BASE_PATH}/$metadata")

    # -- collections --------------------------------------------------------------------------

    def _products(self, request: flask.Request, query: ProductsQuery) -> flask.Response:
        catalog = self._catalog()
        selection = Selection(
            where=query.where,
            order=query.order,
            # One more tells whether a next page exists; $top=0 (with $count, the count alone) has none.
            limit=query.top + 1 if query.top else 0,
            offset=0 if query.after is not None else query.skip,
            after=query.after,
        )
        body: dict[str, Any] = {"@odata.context": _context(query.expand)}
        if query.count:
            entries, body["@odata.count"] = catalog.find_counted(selection)
        else:
            entries = catalog.find(selection)
        more = query.top > 0 and len(entries) > query.top
        entries = entries[: query.top]
        root = _root(request)
        body["value"] = [
            product_json(e, select=query.select, expand=query.expand, root=root, orjson_body=True) for e in entries
        ]
        if more:
            last = entries[-1]
            values = tuple(sort_value(last, key.prop) for key in total_order(query.order))
            body["@odata.nextLink"] = _next_link(request, encode_skiptoken(query.order, values))
        return _json(body)

    def _filter_list(self, request: flask.Request) -> flask.Response:
        payload = request.get_json(silent=True)
        items = payload.get("FilterProducts") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("Name"), str) for i in items
        ):
            raise BadOption('FilterList takes {"FilterProducts": [{"Name": "<product name>"}, ...]}')
        if len(items) > MAX_FILTER_LIST:
            raise BadOption(f"FilterList takes at most {MAX_FILTER_LIST} names; got {len(items)}")
        options = parse_options(_query_args(request), collection=False)
        names = list(dict.fromkeys(item["Name"] for item in items))
        entries = self._catalog().search(ProductQuery(names=names, limit=max(len(names), 1))) if names else []
        by_name = {e.name: e for e in entries}
        # In the order asked; unknown names are simply absent (as CDSE does).
        root = _root(request)
        value = [
            product_json(by_name[n], select=options.select, expand=options.expand, root=root, orjson_body=True)
            for n in names
            if n in by_name
        ]
        return _json({"@odata.context": _context(options.expand), "value": value})


# Properties in the order the ICD lists them (flask.jsonify would sort them, at a cost per response).
# A stored footprint (orjson.Fragment) is written again by orjson, as it is.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=lambda fragment: orjson.loads(orjson.dumps(fragment))
)


def _role_for(path: str) -> str:
    """A product's bytes need the downloader role; everything else here is metadata (quicklooks too)."""
    match = _ENTITY.match(path.removeprefix(BASE_PATH).rstrip("/"))
    return DOWNLOADER if match is not None and match[3] == "/$value" else VIEWER


def _configured_archives() -> ArchiveStore:
    from shared.catalog.archives import archives_at
    from shared.settings import get_settings  # the function's settings, when its entry point passes no store

    return archives_at(get_settings().catalog_url)


def _query_args(request: flask.Request) -> dict[str, str]:
    """The query options, ``$expand`` given several times joined (eodag sends ``$expand=Attributes&$expand=Assets``)."""
    args = request.args.to_dict(flat=True)
    if len(expands := request.args.getlist("$expand")) > 1:
        args["$expand"] = ",".join(expands)
    return args


def _root(request: flask.Request) -> str:
    """The service root as the client reached it: the base of the assets' download links."""
    return request.host_url.rstrip("/") + BASE_PATH


def _json(body: dict[str, Any]) -> flask.Response:
    # orjson writes a page of 100 products ten times faster than the standard encoder (1.6 ms of
    # a 20 ms query), which remains for integers beyond 64 bits (an attribute may hold one).
    try:
        encoded = orjson.dumps(body)
    except orjson.JSONEncodeError:
        encoded = _ENCODER.encode(body).encode()
    return flask.Response(encoded, mimetype="application/json")


def _context(expand: tuple[str, ...]) -> str:
    if not expand:
        return "$metadata#Products"
    return "$metadata#Products(" + ",".join(f"{e}()" for e in expand) + ")"


def _next_link(request: flask.Request, token: str) -> str:
    kept = [(k, v) for k, v in request.args.items(multi=True) if k not in ("$skip", "$skiptoken")]
    kept.append(("$skiptoken", token))
    return request.base_url + "?" + urlencode(kept, quote_via=quote, safe="$/(),:'")


__all__ = ["BASE_PATH", "MAX_TOP", "ODataService"]
