"""Putting local products (directories or single files) into the inbox, as an operator or a station would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from shared.products.naming import UnknownProduct, recognise
from shared.storage.objects import ObjectStore


def product_files(path: Path) -> Iterator[tuple[Path, str]]:
    """(file, object key) pairs of a product: a directory keeps its name as the key prefix.

    The manifest comes last, as producers deliver it: a product is complete when its manifest lands.
    """
    if path.is_dir():
        try:
            manifest = recognise(path.name).manifest_name
        except UnknownProduct:
            manifest = None
        files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: (p.name == manifest, p))
        for file in files:
            yield file, f"{path.name}/{file.relative_to(path).as_posix()}"
    else:
        yield path, path.name


def upload_product(
    store: ObjectStore, bucket: str, path: Path, on_bytes: Callable[[int], None] | None = None
) -> list[str]:
    keys = []
    for file, key in product_files(path):
        # boto3's managed upload goes multipart for large files; the callback feeds a progress bar.
        store.client.upload_file(str(file), bucket, key, Callback=on_bytes)
        keys.append(key)
    return keys
