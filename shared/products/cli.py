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
from pathlib import Path


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
    samples = commands.add_parser("samples", help="the team's sample products", description="the sample products")
    actions = samples.add_subparsers(required=True, metavar="ACTION")
    reinflate = actions.add_parser(
        "reinflate",
        help="write the sample products whole (every listed object), verifying against their manifests",
        description="write the sample products whole (every listed object), verifying against their manifests",
    )
    reinflate.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    reinflate.add_argument("--samples-dir", type=Path, help="the samples (default ../shared/samples of the checkout)")
    reinflate.add_argument("--max-object-size", type=int, default=16 * 1024, help="bytes (default 16384)")
    reinflate.add_argument("--seed", type=int, default=0, help="seed of the stand-in bytes (default 0)")
    reinflate.set_defaults(command=samples_reinflate_command)


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


def samples_reinflate_command(args: argparse.Namespace) -> int:
    """One JSON line per product (objects, bytes, integrity, files of the sample left out), then the totals;
    exit 1 when a product with a manifest to verify against does not verify, 2 when nothing could be made."""
    from shared.products.integrity import LocalDirectory, verify_product
    from shared.products.reinflate import reinflate_samples, sample_products, unlisted_files

    try:
        samples = sample_products(args.samples_dir)
        made = reinflate_samples(
            args.out_dir, samples_dir=args.samples_dir, max_object_size=args.max_object_size, seed=args.seed
        )
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 2
    totals = {"products": len(made), "objects": 0, "bytes": 0}
    failed = False
    for sample, path in zip(samples, made, strict=True):
        files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        size = sum(f.stat().st_size for f in files)
        line: dict[str, object] = {"name": path.name, "objects": len(files), "bytes": size}
        if path.is_dir():
            report = verify_product(LocalDirectory(path))
            line["integrity"] = "ok" if report.ok else report.error or "does not verify"
            line["leftOut"] = unlisted_files(sample)
            failed |= report.error is None and not report.ok
        totals["objects"] += len(files)
        totals["bytes"] += size
        print(json.dumps(line))
    print(json.dumps({"totals": totals}))
    return 1 if failed else 0
