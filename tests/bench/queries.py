"""Varied catalog queries as PRIP clients send them, each with the hand-written SQL for the same answer.

Every query names a product type, a sensing window of 1-30 days somewhere in the benchmark's year and an
area of 2°-40° (a box drawn as a polygon), with ``$top=100``; half ask ``$count=true``, a third order by
sensing time (newest first). The literals differ from query to query (times to the second, coordinates
to 1e-4°), so no two ``$filter`` are alike and none is answered from a parse cache.

The hand-written SQL is what a person writes for this schema: the type + time index and the footprint's
box (SQLite) or ``ST_Intersects`` (PostGIS), rows fetched as tuples; with ``$count``, a count beside it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.bench.catalog_data import T0, YEAR_S

PRODUCT_TYPES = (
    "IW_GRDH_1S", "IW_SLC__1S", "EW_GRDM_1S", "IW_RAW__0S", "WV_OCN__2S",
    "S2MSI1C", "S2MSI2A", "OL_1_EFR___", "SL_1_RBT___", "SL_2_LST___",
)  # fmt: skip


@dataclass(frozen=True)
class Query:
    product_type: str
    start: datetime
    stop: datetime
    box: tuple[float, float, float, float]  # west, south, east, north
    count: bool
    by_date: bool

    @property
    def filter(self) -> str:
        west, south, east, north = self.box
        ring = f"{west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}"
        return (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            f"att/OData.CSC.StringAttribute/Value eq '{self.product_type}') and "
            f"ContentDate/Start ge {_odata_time(self.start)} and ContentDate/Start lt {_odata_time(self.stop)} and "
            f"OData.CSC.Intersects(area=geography'SRID=4326;POLYGON(({ring}))')"
        )

    @property
    def path(self) -> str:
        path = "/odata/v1/Products?$top=100&$filter=" + quote(self.filter, safe="")
        if self.by_date:
            path += "&$orderby=" + quote("ContentDate/Start desc")
        if self.count:
            path += "&$count=true"
        return path

    def sql(self, backend: str) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements (with parameters) a person runs for this query: the page, and the count if asked."""
        west, south, east, north = self.box
        order = "p.validity_start DESC, p.name" if self.by_date else "p.publication_time, p.name"
        if backend == "sqlite":
            where = (
                "p.attr_product_type = ? AND p.validity_start >= ? AND p.validity_start < ? "
                "AND p.max_lon >= ? AND p.min_lon <= ? AND p.max_lat >= ? AND p.min_lat <= ?"
            )
            params: tuple[Any, ...] = (
                self.product_type, _sqlite_time(self.start), _sqlite_time(self.stop), west, east, south, north,
            )  # fmt: skip
            mark = "?"
        else:
            where = (
                "p.product_type = %s AND p.validity_start >= %s AND p.validity_start < %s AND "
                "ST_Intersects(p.footprint_geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
            )
            params = (self.product_type, self.start, self.stop, west, south, east, north)
            mark = "%s"
        statements = [(f"SELECT p.* FROM products p WHERE {where} ORDER BY {order} LIMIT {mark}", (*params, 101))]
        if self.count:
            statements.append((f"SELECT count(*) FROM products p WHERE {where}", params))
        return statements


def varied_queries(count: int, seed: int = 7) -> list[Query]:
    rng = random.Random(seed)
    queries = []
    for i in range(count):
        days = rng.uniform(1, 30)
        start = T0 + timedelta(seconds=rng.randrange(0, int(YEAR_S - days * 86400)))
        width, height = rng.uniform(2, 40), rng.uniform(2, 40)
        west = round(rng.uniform(-180, 180 - width), 4)
        south = round(rng.uniform(-75, 75 - height), 4)
        queries.append(
            Query(
                product_type=rng.choice(PRODUCT_TYPES),
                start=start,
                stop=start + timedelta(seconds=int(days * 86400)),
                box=(west, south, round(west + width, 4), round(south + height, 4)),
                count=i % 2 == 1,
                by_date=i % 3 == 0,
            )
        )
    return queries


def _odata_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sqlite_time(value: datetime) -> str:
    from shared.catalog.model import format_utc  # the store's fixed-width text

    return format_utc(value)
