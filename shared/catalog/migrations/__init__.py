"""Versioned schema migrations of the catalog, one directory of SQL files per backend.

Files are named ``NNNN_what.sql``; they are applied in version order, each once, and recorded in
the ``schema_migrations`` table under the component ``catalog`` (so other components can keep
their own versions in the same database). Never edit a released file: add the next version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

COMPONENT = "catalog"
_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The migrations of ``backend`` ("sqlite" or "postgresql"), ordered by version."""
    migrations: list[Migration] = []
    for item in resources.files(__package__).joinpath(backend).iterdir():
        match = _FILE_NAME.match(item.name)
        if match:
            migrations.append(Migration(int(match[1]), match[2], item.read_text(encoding="utf-8")))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if not migrations or len(set(versions)) != len(versions):
        raise RuntimeError(f"catalog migrations for {backend} missing or with duplicate versions: {versions}")
    return migrations
