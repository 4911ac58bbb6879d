"""The three processing chains, driven by uploads alone (``refsys chain``, ``refsys demo --chain``).

Each chain is what a ground station and the auxiliary-data providers would deliver, made by the product
factory: the level-0 input and every auxiliary file the configured task tables ask for, with validities
that cover it. Uploaded into a running platform's inbox they are ingested, cataloged and prepared into
jobs; the jobs run (the IPF simulators on a laptop) and their outputs are ingested in turn:

* ``s1``: an EDRS session (2 channels) -> AIOP: L0 segments (VV, VH) -> L0 assembly: slices and their
  annotation/calibration/noise products -> L1 SLC and GRD, and L2 OCN (from the slices, as the reference
  runs it);
* ``s2``: an L0 datastrip and its granules on 12 detectors -> L1B and L1C (one job per datastrip);
* ``s3``: an OLCI L0 (full resolution) -> L1 EFR/ERR -> L2 land and water products.

With ``wait``, :func:`run_chain` returns the final level's products once they are cataloged and no job
of the chain is still waiting or running; their lineage reaches the uploads.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.ingestion.upload import upload_product
from shared.platform.client import RunningPlatform
from shared.processing.lineage import LineageStore
from shared.products.factory import make_product

YEAR = timedelta(days=365)


class ChainTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class Upload:
    product_type: str
    start: datetime
    stop: datetime | None
    satellite: str = "A"
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Chain:
    name: str
    stages: tuple[tuple[str, ...], ...]  # the configured processors it runs through; those of a stage side by side
    final_types: tuple[str, ...]  # the product types of its last level
    uploads: tuple[Upload, ...]
    data: int = 1  # the first uploads are the chain's own data (the rest: auxiliary files)

    @property
    def processors(self) -> tuple[str, ...]:
        return tuple(p for stage in self.stages for p in stage)


def _aux(types: tuple[str, ...], t: datetime, satellite: str = "A") -> tuple[Upload, ...]:
    return tuple(Upload(p, t - YEAR, None, satellite) for p in types)


def chains(t: datetime) -> dict[str, Chain]:
    """The chains for sensing around ``t`` (whole seconds, UTC)."""
    s1_session = Upload("SESSION", t, t + timedelta(seconds=60), options={"chunks": 3, "channels": 2})
    s1_orbits = (
        # AIOP widens its window by 4 days before (T0 = 345600 s) to find the predicted orbit.
        Upload("MPL_ORBPRE", t - timedelta(days=5), t + timedelta(days=2)),
        Upload("MPL_ORBSCT", t - YEAR, None),
        Upload("AUX_RESORB", t - timedelta(hours=1), t + timedelta(hours=2)),
        Upload("AUX_OBMEMC", t - YEAR, None),
    )
    s2_start, s2_stop = t, t + timedelta(seconds=10)
    datastrip = Upload("MSI_L0__DS", s2_start, s2_stop)
    granule_s = 3.608
    granules = tuple(
        Upload("MSI_L0__GR", s2_start + timedelta(seconds=granule_s * i),
               s2_start + timedelta(seconds=granule_s * (i + 1)), options={"detector": d})
        for d in range(1, 13)
        for i in range(3)
    )  # fmt: skip
    s3_l0 = Upload("OL_0_EFR___", t, t + timedelta(seconds=180))
    s3_aux = (
        "AX___FRO_AX", "AX___OSF_AX", "OL_1_INS_AX", "OL_1_CAL_AX", "OL_1_PRG_AX", "OL_1_CLUTAX",
        "AX___DEM_AX", "AX___LWM_AX", "AX___OOM_AX", "AX___CLM_AX", "AX___TRM_AX", "OL_1_EO__AX",
        "OL_2_PCP_AX", "OL_2_PPP_AX", "OL_2_WVP_AX", "OL_2_ACP_AX", "OL_2_OCP_AX", "OL_2_VGP_AX", "OL_2_CLP_AX",
    )  # fmt: skip
    return {
        "s1": Chain(
            "s1",
            (("s1-aiop",), ("s1-l0asp",), ("s1-l1-iw", "s1-l2-iw")),
            ("IW_OCN__2S",),
            (
                s1_session,
                *s1_orbits,
                *_aux(("AUX_PP1", "AUX_CAL", "AUX_INS", "AUX_PP2"), t),
                *_aux(("AUX_WND", "AUX_WAV", "AUX_ICE"), t, "_"),
            ),
        ),
        "s2": Chain(
            "s2",
            (("s2-l1",),),
            ("MSI_L1C_DS", "MSI_L1C_TL"),
            (
                datastrip,
                *granules,
                *_aux(("AUX_UT1UTC", "GIP_PROBAS"), t, "_"),
                Upload("AUX_ECMWFD", t - timedelta(hours=6), t + timedelta(hours=6), "_"),
            ),
        ),
        "s3": Chain(
            "s3",
            (("s3-ol1-nrt",), ("s3-ol2-nrt",)),
            ("OL_2_LFR___", "OL_2_WFR___"),
            (
                s3_l0,
                Upload("TM_0_NAT___", t - timedelta(minutes=10), t + timedelta(minutes=10)),
                *_aux(s3_aux, t),
                # Meteo forecasts: OL1 wants 2 or 3 of them over its window and the 3 h after it.
                *(Upload("AX___MF1_AX", t + timedelta(hours=h), t + timedelta(hours=h + 6)) for h in (-3, 3)),
            ),
        ),
    }


def chain_anchor() -> datetime:
    """Sensing two hours ago: recent, as production is, and after every auxiliary file's start."""
    return (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


def write_uploads(chain: Chain, directory: Path) -> list[Path]:
    """The chain's products, written under ``directory``; the S2 granules name their datastrip."""
    paths: list[Path] = []
    datastrip: str | None = None
    for n, up in enumerate(chain.uploads):
        options = dict(up.options)
        if up.product_type == "MSI_L0__GR" and datastrip:
            options["datastrip"] = datastrip
        path = make_product(directory, up.product_type, up.start, up.stop, satellite=up.satellite, seed=n,
                            options=options)  # fmt: skip
        if up.product_type == "MSI_L0__DS":
            datastrip = path.name
        paths.append(path)
    return paths


def run_chain(platform: RunningPlatform, name: str, *, wait: bool, timeout: float = 600.0) -> list[str]:
    """Upload chain ``name`` into ``platform``; with ``wait``, the names of its final products."""
    chain = chains(chain_anchor())[name]
    store = platform.object_store()
    inbox = platform.settings.inbox_bucket
    with tempfile.TemporaryDirectory(prefix=f"refsys-chain-{name}-") as tmp:
        products = write_uploads(chain, Path(tmp))
        # Auxiliary files first: the level-0 input then finds its jobs' inputs in the catalog.
        for path in sorted(products, key=lambda p: p.name == products[0].name):
            upload_product(store, inbox, path)
        data = data_names(products[: chain.data])
    if not wait:
        return sorted(p.name for p in products)
    return wait_for_finals(platform.data_dir / "catalog.db", chain, data, timeout)


def data_names(products: list[Path]) -> set[str]:
    """Catalog names of the chain's own data: a session folder's objects are products of their own."""
    return {f.name for p in products for f in (sorted(p.iterdir()) if p.name.startswith("DCS_") else [p])}


def wait_for_finals(catalog_db: Path, chain: Chain, uploaded: set[str], timeout: float) -> list[str]:
    """The chain's final products once cataloged with a lineage reaching ``uploaded`` (the chain's own data),
    and nothing of the chain left to run."""
    lineage = LineageStore(f"sqlite:///{catalog_db}")
    deadline = time.monotonic() + timeout
    while True:
        finals = [n for n in _cataloged(catalog_db, chain.final_types) if _leaves(lineage.tree(n)) & uploaded]
        if finals and _quiet(catalog_db, chain):
            return sorted(finals)
        if time.monotonic() > deadline:
            raise ChainTimeout(f"chain {chain.name}: final products not cataloged within {timeout:.0f} s")
        time.sleep(0.5)


def _leaves(tree: dict[str, object]) -> set[str]:
    inputs = tree["inputs"]
    assert isinstance(inputs, list)
    return {str(tree["name"])} if not inputs else set().union(*(_leaves(i) for i in inputs))


def _cataloged(catalog_db: Path, types: tuple[str, ...]) -> list[str]:
    marks = ", ".join("?" for _ in types)
    try:
        with sqlite3.connect(catalog_db, timeout=10) as db:
            rows = db.execute(f"SELECT name FROM products WHERE product_type IN ({marks})", types).fetchall()
    except sqlite3.OperationalError:  # no table yet: nothing cataloged
        return []
    return [r[0] for r in rows]


def _quiet(catalog_db: Path, chain: Chain) -> bool:
    """No job of the chain waits, none of its runs runs, and every final product its runs made is cataloged."""
    marks = ", ".join("?" for _ in chain.processors)
    finals = " OR ".join("l.product_name LIKE ?" for _ in chain.final_types)
    with sqlite3.connect(catalog_db, timeout=10) as db:
        waiting = db.execute(
            f"SELECT count(*) FROM processing_jobs WHERE state = 'waiting' AND processor IN ({marks})", chain.processors
        ).fetchone()[0]
        running = db.execute(
            "SELECT count(*) FROM processing_runs WHERE state = 'running' AND job_key IN"
            f" (SELECT job_key FROM processing_jobs WHERE processor IN ({marks}))",
            chain.processors,
        ).fetchone()[0]
        uncataloged = db.execute(
            f"SELECT count(*) FROM product_lineage l WHERE l.processor IN ({marks}) AND ({finals})"
            " AND NOT EXISTS (SELECT 1 FROM products p WHERE p.name = l.product_name)",
            (*chain.processors, *(f"%{t}%" for t in chain.final_types)),
        ).fetchone()[0]
    return waiting == running == uncataloged == 0
