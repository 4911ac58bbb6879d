"""Offline STAC validation for the tests: the item/collection schemas and every extension schema an
object declares, resolved to the team's local copies in ../shared/schemas/stac (no network)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas" / "stac"
SPEC = "https://schemas.stacspec.org/v1.1.0"


@lru_cache(maxsize=1)
def registry() -> Registry[Any]:
    if not SCHEMAS.is_dir():
        raise AssertionError(f"the team's STAC schemas are expected at {SCHEMAS}")
    resources: list[tuple[str, Resource[Any]]] = []
    for path in SCHEMAS.rglob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        relative = path.relative_to(SCHEMAS).as_posix()
        urls = {str(schema.get("$id", "")).rstrip("#")}
        # Registered under the published URLs too: some $ids are misspelt upstream (common.json's
        # "commonjson", processing v1.1.0's "v1.0.0").
        if relative.startswith("extensions/"):
            urls.add("https://stac-extensions.github.io/" + relative.removeprefix("extensions/"))
        if relative.startswith("stac-spec/"):
            urls.add("https://schemas.stacspec.org/" + relative.removeprefix("stac-spec/"))
        resource = Resource.from_contents(schema)
        resources += [(url, resource) for url in urls if url]
    return Registry().with_resources(resources)


def _schema(url: str) -> Any:
    try:
        return registry().contents(url.rstrip("#"))
    except Exception as exc:  # referencing raises NoSuchResource: name what is missing
        raise AssertionError(f"no local copy of the schema {url} under {SCHEMAS}") from exc


def errors(stac_object: dict[str, Any]) -> list[str]:
    """Validation messages of an Item or Collection against its core schema and each declared extension."""
    core = {"Feature": "item-spec/json-schema/item.json", "Collection": "collection-spec/json-schema/collection.json"}
    urls = [f"{SPEC}/{core[stac_object['type']]}", *stac_object.get("stac_extensions", [])]
    found: list[str] = []
    for url in urls:
        validator = Draft7Validator(_schema(url), registry=registry())
        found += [f"{url}: {e.message}" for e in validator.iter_errors(stac_object)]
    return found
