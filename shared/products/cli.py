"""``refsys identify`` and ``refsys describe``: a thin shell over :mod:`shared.products`.

Contract (issue 3): ``identify NAME...`` prints one JSON object per name per line, with at least ``name``,
``mission``, ``satellite``, ``productType``, ``level``, ``family``, ``validityStart``, ``validityStop``; a name
that is no Sentinel product prints ``{"name": ..., "error": ...}`` and the exit code is 2 if any name failed.
``describe PATH`` (a directory, a zip, a single-object product, or ``s3://bucket/key`` of the running
platform found with ``--data-dir``) prints the description as JSON: the attributes, the GeoJSON footprint,
the integrity report (and the STAC item with ``--stac``); exit 2 when the product cannot be described,
1 when it was described but does not verify.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_data_dir: Callable[[argparse.ArgumentParser], None],
) -> None:
    identify = commands.add_parser("identify", help="what product names say", description="what product names say")
    identify.add_argument("names", nargs="+", metavar="NAME")
    identify.set_defaults(command=identify_command)
    describe = commands.add_parser(
        "describe", help="metadata and integrity of a product", description="metadata and integrity of a product"
    )
    describe.add_argument("path", metavar="PATH", help="product directory, zip, file, or s3://bucket/key")
    describe.add_argument("--stac", action="store_true", help="also print the STAC item")
    add_data_dir(describe)
    describe.set_defaults(command=describe_command)


def identify_command(args: argparse.Namespace) -> int:
    from shared.products.describe import identity_json
    from shared.products.naming import UnknownProduct, recognise

    failed = False
    for name in args.names:
        try:
            line = identity_json(recognise(name))
        except UnknownProduct as exc:
            failed = True
            line = {"name": name, "error": str(exc)}
        print(json.dumps(line))
    return 2 if failed else 0


def describe_command(args: argparse.Namespace) -> int:
    from shared.products.describe import describe
    from shared.products.manifest import ManifestError
    from shared.products.naming import UnknownProduct
    from shared.products.stac import to_stac_item

    store = None
    try:
        if str(args.path).startswith("s3://"):
            from shared.platform.client import PlatformNotRunning, RunningPlatform

            try:
                store = RunningPlatform.find(args.data_dir).object_store()
            except PlatformNotRunning as exc:
                print(f"refsys: {exc}", file=sys.stderr)
                return 2
        description = describe(args.path, store)
    except (UnknownProduct, ManifestError, FileNotFoundError, ValueError) as exc:
        print(json.dumps({"path": str(args.path), "error": str(exc)}))
        return 2
    out = description.to_json()
    if args.stac:
        out["stac"] = to_stac_item(description.product, description.metadata)
    print(json.dumps(out, indent=2))
    return 0 if description.integrity.ok or description.integrity.manifest is None else 1
