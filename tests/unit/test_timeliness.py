"""``refsys timeliness``: delays per product type and stage, from the catalog's times and the lineage."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from events.processing import JobCompleted, ProducedProduct
from shared.catalog import open_catalog
from shared.observability.timeliness import delays, summarise
from shared.processing.lineage import LineageStore
from tests.integration.test_catalog_store import T0, make_entry

L0, L1 = "S3A_OL_0_EFR____X", "S3A_OL_1_EFR____X"


def catalog_with_a_chain(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = open_catalog(url)
    hour = timedelta(hours=1)
    for i in range(4):  # sensing ends at T0; inbox 1, 2, 3, 4 hours later; cataloged 1 minute after arriving
        inbox = T0 + (i + 1) * hour
        catalog.upsert(
            make_entry(f"{L0}{i}", product_type="OL_0_EFR___", validity_stop=T0, inbox_time=inbox,
                       publication_time=inbox + timedelta(minutes=1), modification_time=inbox + timedelta(minutes=1))
        )  # fmt: skip
    output = T0 + 5 * hour
    catalog.upsert(make_entry(L1, product_type="OL_1_EFR___", publication_time=output, modification_time=output))
    catalog.close()
    made = ProducedProduct(name=L1, product_type="OL_1_EFR___", bucket="b", key="k", size=1)
    LineageStore(url).record(
        JobCompleted(
            run_id="r", job_key="k", processor="s3-ol1", task_table="t", processor_name="OL1", processor_version="1",
            inputs=(f"{L0}0", f"{L0}3"), started=output, finished=output, durations={}, bytes_downloaded=0,
            bytes_uploaded=0, outputs=(made,),
        )
    )  # fmt: skip
    return url


def test_delays_per_stage_with_nearest_rank_percentiles(tmp_path: Path) -> None:
    url = catalog_with_a_chain(tmp_path)
    catalog = open_catalog(url)
    try:
        report = summarise(delays(catalog, LineageStore(url).inputs_of_all()))
    finally:
        catalog.close()
    sensing = report["OL_0_EFR___"]["sensing_to_inbox"]
    assert sensing == {"count": 4, "p50": 7200.0, "p90": 14400.0, "p99": 14400.0, "max": 14400.0}
    assert report["OL_0_EFR___"]["inbox_to_catalog"]["p50"] == 60.0
    # From its last input's cataloging (4 h 1 min after sensing) to its own (5 h after).
    assert report["OL_1_EFR___"]["catalog_to_output"] == {"count": 1, "p50": 3540.0, "p90": 3540.0,
                                                          "p99": 3540.0, "max": 3540.0}  # fmt: skip


def test_the_command_prints_json_and_draws_a_png(tmp_path: Path) -> None:
    url = catalog_with_a_chain(tmp_path)
    png = tmp_path / "timeliness.png"
    since = (T0 + timedelta(hours=2)).isoformat()
    run = subprocess.run(
        [sys.executable, "-m", "shared.cli", "timeliness", "--catalog-url", url, "--json", "--since", since,
         "--png", str(png)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["OL_0_EFR___"]["sensing_to_inbox"]["count"] == 3  # the first was published before --since
    assert png.read_bytes().startswith(b"\x89PNG")
