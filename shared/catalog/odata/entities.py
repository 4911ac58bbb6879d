"""How a catalog entry looks in OData: the Product JSON, its Attributes and Quicklooks, the service
document and the CSDL ``$metadata`` (namespace ``OData.CSC``, reference §4.1, CDSE peers §1.2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.catalog.filters import NEVER_EVICTED
from shared.catalog.model import CatalogEntry, attribute_value_type

PRODUCTION_TYPE = "systematic_production"  # no on-demand production in this system
# An open-ended validity (catalog validity_stop NULL: AUX_CAL, MPL_ORBSCT...) ends as the reference PRIP writes
# it: its metadata extraction stores 9999-12-31T23:59:59.999999Z for a missing or 9999 stop, served truncated
# to milliseconds, the same sentinel CDSE writes for "never" (EvictionDate). A null End broke clients.
OPEN_END = NEVER_EVICTED


def _time(value: datetime | None) -> str | None:
    """Milliseconds, as PRIP and CDSE write them (``2023-08-23T12:31:39.000Z``): clients parse that form."""
    if value is None:
        return None
    if value.tzinfo is not UTC:  # entries hold UTC already; anything else is converted first
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def footprint_wkt(entry: CatalogEntry) -> str | None:
    """The ICD's ``Footprint``: ``geography'SRID=4326;POLYGON ((...))'``.

    Written from the GeoJSON directly (from its stored text where the entry has it): building a shapely
    geometry per product to print it cost more than the rest of the product's JSON.
    """
    if entry.footprint_text is not None:
        return f"geography'SRID=4326;{wkt_of_json(entry.footprint_text)}'"
    return None if entry.footprint is None else f"geography'SRID=4326;{wkt(entry.footprint)}'"


def wkt(geojson: dict[str, Any]) -> str:
    """Well-known text of a GeoJSON geometry, as GEOS writes it but with numbers that read back
    exactly (the shortest round-trip form; GEOS keeps 16 significant digits)."""
    kind = geojson["type"]
    if kind == "GeometryCollection":
        return "GEOMETRYCOLLECTION (" + ", ".join(wkt(g) for g in geojson["geometries"]) + ")"
    coordinates = geojson["coordinates"]
    if not coordinates:
        return f"{kind.upper()} EMPTY"
    if kind == "Point":
        body = "(" + _position(coordinates) + ")"
    elif kind == "MultiPoint":
        body = "(" + ", ".join("(" + _position(point) + ")" for point in coordinates) + ")"
    else:  # lines, rings or polygons
        body = _nested(orjson.dumps(coordinates).decode())
    return f"{kind.upper()} {body}"


def wkt_of_json(text: str) -> str:
    """``wkt`` of a geometry's compact JSON text (as the stores give it), reshaped as text where it can be:
    a footprint's coordinates are never decoded into Python numbers only to be written again."""
    kind, coordinates = _members(text)
    if kind in _DEPTHS and coordinates != "[]":
        return f"{kind.upper()} {_nested(coordinates)}"
    return wkt(orjson.loads(text))


_COORDINATES_FIRST = '{"coordinates":'  # sorted keys: canonical_json's order (SQLite)
_TYPE_FIRST = '{"type":"'  # shorter keys first: jsonb's order (PostgreSQL)


def _members(text: str) -> tuple[str, str]:
    """The ``type`` and the ``coordinates`` text of a geometry with only these two members, else ``("", "")``."""
    if text.startswith(_COORDINATES_FIRST) and text.endswith('"}'):
        split = text.rfind(',"type":"')
        if split > 0:
            return text[split + 9 : -2], text[len(_COORDINATES_FIRST) : split]
    elif text.startswith(_TYPE_FIRST) and text.endswith("}"):
        split = text.find('","coordinates":')
        if split > 0:
            return text[len(_TYPE_FIRST) : split], text[split + 16 : -1]
    return "", ""


# A footprint of S1 wave mode is a hundred small polygons of 5 points: written from its JSON text by a
# translation and two substitutions over the whole text, it costs less than half of decoding it and
# writing it from Python lists (49 against 115 µs for 20 kB). Brackets become parentheses and commas
# spaces; then the one ") (" at the heart of each separator ("],[" between positions, "]],[[" between
# rings, ...) becomes ", ", which gives every depth its WKT separator at once; a zero fraction is
# dropped, as GEOS drops it.
_BRACKETS = bytes.maketrans(b"[],", b"() ")
_ZERO_FRACTION = re.compile(rb"\.0(?=[ ,)])")
_DEPTHS = frozenset(("LineString", "Polygon", "MultiLineString", "MultiPolygon"))


def _nested(coordinates: str) -> str:
    """Lines, rings or polygons in WKT from the compact JSON array of their coordinates. Numbers are
    kept as JSON wrote them (some otherwise than repr: ``0.00001``, ``1e-7``), which read back exactly."""
    text = coordinates.encode().translate(_BRACKETS).replace(b") (", b", ")
    return _ZERO_FRACTION.sub(b"", text)[1:-1].decode()


def _position(position: list[float]) -> str:
    return " ".join(_number(v) for v in position)


def _number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def product_json(
    entry: CatalogEntry,
    *,
    select: tuple[str, ...] | None = None,
    expand: tuple[str, ...] = (),
    root: str = "",
    orjson_body: bool = False,
) -> dict[str, Any]:
    """The Product's JSON; ``orjson_body``: for a body orjson writes, its ``GeoFootprint`` may be the stored text
    (an ``orjson.Fragment``, written as it is)."""
    properties: dict[str, Any] = {
        "Id": entry.id,
        "Name": entry.name,
        "ContentType": entry.content_type,
        "ContentLength": entry.content_length,
        "OriginDate": _time(entry.inbox_time or entry.publication_time),
        "PublicationDate": _time(entry.publication_time),
        "ModificationDate": _time(entry.modification_time),
        "EvictionDate": _time(entry.eviction_time or NEVER_EVICTED),
        "Online": entry.online,
        "ProductionType": PRODUCTION_TYPE,
        "Checksum": [
            {
                "Algorithm": "MD5",
                "Value": entry.checksum,
                "ChecksumDate": _time(entry.ingestion_time or entry.publication_time),
            }
        ]
        if entry.checksum
        else [],
        "ContentDate": {"Start": _time(entry.validity_start), "End": _time(entry.validity_stop or OPEN_END)},
        "Footprint": footprint_wkt(entry),
        "GeoFootprint": orjson.Fragment(entry.footprint_text)
        if orjson_body and entry.footprint_text
        else entry.footprint,
    }
    body: dict[str, Any] = {"@odata.mediaContentType": entry.content_type}
    if select is None:
        body.update(properties)
    else:
        body["Id"] = entry.id  # always returned, as CDSE does
        body.update({name: properties[name] for name in select})
    if "Attributes" in expand:
        body["Attributes"] = attributes_json(entry)
    if "Quicklooks" in expand:
        body["Quicklooks"] = quicklooks_json(entry)
    if "Assets" in expand:
        body["Assets"] = assets_json(entry, root)
    return body


def attributes_json(entry: CatalogEntry) -> list[dict[str, Any]]:
    items = []
    for name in sorted(entry.attributes):
        value = entry.attributes[name]
        value_type = attribute_value_type(value)
        items.append(
            {
                "@odata.type": f"#OData.CSC.{value_type}Attribute",
                "Name": name,
                "Value": _time(value) if isinstance(value, datetime) else value,
                "ValueType": value_type,
            }
        )
    return items


def quicklook_name(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


def quicklooks_json(entry: CatalogEntry) -> list[dict[str, Any]]:
    return [{"Image": quicklook_name(key)} for key in entry.quicklooks]


def assets_json(entry: CatalogEntry, root: str) -> list[dict[str, Any]]:
    """CDSE's ``Assets`` of a product (``root``: the service root the links start with, ``.../odata/v1``)."""
    from shared.catalog.archives import QUICKLOOK, asset_id  # downloads: shared/catalog/archives.py

    items = []
    for key in entry.quicklooks:
        identifier = asset_id(entry.id, key)
        link = f"{root}/Assets({identifier})/$value"
        items.append({"Type": QUICKLOOK, "Id": identifier, "DownloadLink": link, "S3Path": f"/{entry.bucket}/{key}"})
    return items


SERVICE_DOCUMENT = {
    "@odata.context": "$metadata",
    "value": [
        {"name": "Products", "kind": "EntitySet", "url": "Products"},
        {"name": "Subscriptions", "kind": "EntitySet", "url": "Subscriptions"},  # shared/subscriptions
    ],
}

_ATTRIBUTE_TYPES = "".join(
    f'<EntityType Name="{t}Attribute" BaseType="OData.CSC.Attribute">'
    f'<Property Name="Value" Type="Edm.{edm}"/></EntityType>'
    for t, edm in (
        ("String", "String"),
        ("Integer", "Int64"),
        ("Double", "Double"),
        ("DateTimeOffset", "DateTimeOffset"),
        ("Boolean", "Boolean"),
    )
)

METADATA = f"""<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
<edmx:DataServices>
<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="OData.CSC">
<EnumType Name="ProductionType">
<Member Name="systematic_production" Value="0"/><Member Name="on_demand_default" Value="1"/>
<Member Name="on_demand_non_default" Value="2"/>
</EnumType>
<ComplexType Name="TimeRange">
<Property Name="Start" Type="Edm.DateTimeOffset" Precision="6"/>
<Property Name="End" Type="Edm.DateTimeOffset" Precision="6"/>
</ComplexType>
<ComplexType Name="Checksum">
<Property Name="Algorithm" Type="Edm.String"/><Property Name="Value" Type="Edm.String"/>
<Property Name="ChecksumDate" Type="Edm.DateTimeOffset" Precision="6"/>
</ComplexType>
<ComplexType Name="Property">
<Property Name="Name" Type="Edm.String"/><Property Name="Value" Type="Edm.String"/>
</ComplexType>
<EntityType Name="Product" HasStream="true">
<Key><PropertyRef Name="Id"/></Key>
<Property Name="Id" Type="Edm.Guid" Nullable="false"/>
<Property Name="Name" Type="Edm.String" Nullable="false"/>
<Property Name="ContentType" Type="Edm.String"/>
<Property Name="ContentLength" Type="Edm.Int64"/>
<Property Name="OriginDate" Type="Edm.DateTimeOffset" Precision="6"/>
<Property Name="PublicationDate" Type="Edm.DateTimeOffset" Precision="6"/>
<Property Name="ModificationDate" Type="Edm.DateTimeOffset" Precision="6"/>
<Property Name="EvictionDate" Type="Edm.DateTimeOffset" Precision="6"/>
<Property Name="Online" Type="Edm.Boolean"/>
<Property Name="ProductionType" Type="OData.CSC.ProductionType"/>
<Property Name="Checksum" Type="Collection(OData.CSC.Checksum)"/>
<Property Name="ContentDate" Type="OData.CSC.TimeRange"/>
<Property Name="Footprint" Type="Edm.Geography" SRID="4326"/>
<Property Name="GeoFootprint" Type="Edm.Geography" SRID="4326"/>
<NavigationProperty Name="Attributes" Type="Collection(OData.CSC.Attribute)"/>
<NavigationProperty Name="Quicklooks" Type="Collection(OData.CSC.Quicklook)"/>
<NavigationProperty Name="Assets" Type="Collection(OData.CSC.Asset)"/>
<NavigationProperty Name="Inputs" Type="Collection(OData.CSC.Product)"/>
<NavigationProperty Name="Outputs" Type="Collection(OData.CSC.Product)"/>
</EntityType>
<EntityType Name="Attribute" Abstract="true">
<Key><PropertyRef Name="Name"/></Key>
<Property Name="Name" Type="Edm.String" Nullable="false"/><Property Name="ValueType" Type="Edm.String"/>
</EntityType>
{_ATTRIBUTE_TYPES}
<EntityType Name="Quicklook" HasStream="true">
<Key><PropertyRef Name="Image"/></Key><Property Name="Image" Type="Edm.String" Nullable="false"/>
</EntityType>
<EntityType Name="Asset" HasStream="true">
<Key><PropertyRef Name="Id"/></Key>
<Property Name="Id" Type="Edm.Guid" Nullable="false"/><Property Name="Type" Type="Edm.String"/>
<Property Name="DownloadLink" Type="Edm.String"/><Property Name="S3Path" Type="Edm.String"/>
</EntityType>
<EntityType Name="Subscription">
<Key><PropertyRef Name="Id"/></Key>
<Property Name="Id" Type="Edm.Guid" Nullable="false"/><Property Name="FilterParam" Type="Edm.String"/>
<Property Name="StageOrder" Type="Edm.Boolean"/><Property Name="Priority" Type="Edm.Int64"/>
<Property Name="Status" Type="Edm.String"/><Property Name="SubscriptionEvent" Type="Collection(Edm.String)"/>
<Property Name="NotificationEndpoint" Type="Edm.String"/><Property Name="NotificationEpUsername" Type="Edm.String"/>
<Property Name="NotificationEpPassword" Type="Edm.String"/>
<Property Name="SubmissionDate" Type="Edm.DateTimeOffset" Precision="3"/>
<Property Name="LastNotificationDate" Type="Edm.DateTimeOffset" Precision="3"/>
<Property Name="AckMessagesNum" Type="Edm.Int64"/><Property Name="CurrentQueueLength" Type="Edm.Int64"/>
<Property Name="MaxQueueLength" Type="Edm.Int64"/>
</EntityType>
<Function Name="Intersects" IsBound="false">
<Parameter Name="geo_property" Type="Edm.Geography"/><Parameter Name="geo_shape" Type="Edm.Geography"/>
<ReturnType Type="Edm.Boolean"/>
</Function>
<Function Name="Within" IsBound="false">
<Parameter Name="geo_property" Type="Edm.Geography"/><Parameter Name="geo_shape" Type="Edm.Geography"/>
<ReturnType Type="Edm.Boolean"/>
</Function>
<Function Name="Disjoints" IsBound="false">
<Parameter Name="geo_property" Type="Edm.Geography"/><Parameter Name="geo_shape" Type="Edm.Geography"/>
<ReturnType Type="Edm.Boolean"/>
</Function>
<Action Name="FilterList" IsBound="true">
<Parameter Name="Products" Type="Collection(OData.CSC.Product)"/>
<Parameter Name="FilterProducts" Type="Collection(OData.CSC.Property)"/>
<ReturnType Type="Collection(OData.CSC.Product)"/>
</Action>
<EntityContainer Name="PRIPData">
<EntitySet Name="Products" EntityType="OData.CSC.Product">
<NavigationPropertyBinding Path="Attributes" Target="Attributes"/>
<NavigationPropertyBinding Path="Quicklooks" Target="Quicklooks"/>
<NavigationPropertyBinding Path="Assets" Target="Assets"/>
<NavigationPropertyBinding Path="Inputs" Target="Products"/>
<NavigationPropertyBinding Path="Outputs" Target="Products"/>
</EntitySet>
<EntitySet Name="Attributes" EntityType="OData.CSC.Attribute" IncludeInServiceDocument="false"/>
<EntitySet Name="Quicklooks" EntityType="OData.CSC.Quicklook" IncludeInServiceDocument="false"/>
<EntitySet Name="Assets" EntityType="OData.CSC.Asset" IncludeInServiceDocument="false"/>
<EntitySet Name="Subscriptions" EntityType="OData.CSC.Subscription"/>
</EntityContainer>
</Schema>
</edmx:DataServices>
</edmx:Edmx>
"""
