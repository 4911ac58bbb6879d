"""Products shaped like real ones, end to end: the team's samples re-inflated (2 to 243 objects, MD5 and
SHA3-256 manifests, single files, EDRS sessions), real-shape S1 SLC and S2 L1C products, and bad products,
uploaded all at once into the embedded platform. Every good product is cataloged once, every bad one is
quarantined with its reason, and a normal run has no traceback, no 5xx, no retried delivery."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from events import ProductIngested
from shared.ingestion.quarantine import Quarantine
from shared.ingestion.upload import product_files, upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.products import recognise
from shared.products.integrity import LocalDirectory, verify_product
from shared.products.reinflate import add_unlisted, flip_byte, garble, reinflate_samples, write_real_shape
from tests.e2e.test_platform import settled

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]
START = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


class Outcomes(logging.Handler):
    """The broker's words on each delivery attempt, to say why one was retried."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def broker_outcomes() -> Iterator[Outcomes]:
    logger = logging.getLogger("shared.bus.broker")
    handler, level = Outcomes(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def at(minute: int) -> datetime:
    return START + timedelta(minutes=minute)  # distinct products get distinct sensing times (and names)


def good_products(directory: Path, samples: Path) -> dict[Path, list[str]]:
    """Each product to upload, with the catalog names it must give (a session folder gives one per file)."""
    made = reinflate_samples(directory / "samples", samples_dir=samples)
    made += [write_real_shape(directory, "S1_SLC", at(1), seed=1), write_real_shape(directory, "S2_L1C", at(1), seed=1)]
    expected = {}
    for product in made:
        kind = recognise(product.name).packaging
        if kind == "SESSION":
            expected[product] = [file.name for file, _ in product_files(product)]
        elif not product.is_dir() or verify_product(LocalDirectory(product)).ok:
            expected[product] = [product.name]
        # else: a sample folder without its manifest (four S2 folders): it would wait for it
    return expected


def bad_products(directory: Path) -> dict[Path, tuple[str, str]]:
    """Each bad product, with the quarantine reason it must get and a word its detail must name."""
    md5 = write_real_shape(directory, "S1_SLC", at(2), seed=2)
    tiff = next(p for p in sorted((md5 / "measurement").iterdir()))
    flip_byte(md5, f"measurement/{tiff.name}")
    sha3 = write_real_shape(directory, "S2_L1C", at(3), seed=3)
    jp2 = next(p for p in sorted(sha3.rglob("*.jp2")))
    flip_byte(sha3, jp2.relative_to(sha3).as_posix())
    unlisted = write_real_shape(directory, "S1_SLC", at(4), seed=4)
    add_unlisted(unlisted, "measurement/stray-copy.tiff")
    garbled = write_real_shape(directory, "S2_L1C", at(5), seed=5)
    garble(garbled, "MTD_MSIL1C.xml")
    return {
        md5: ("checksum-mismatch", tiff.name),
        sha3: ("checksum-mismatch", jp2.name),
        unlisted: ("unlisted-files", "stray-copy.tiff"),
        garbled: ("metadata-unreadable", "MTD_MSIL1C.xml"),
    }


def cataloged_names(platform: EmbeddedPlatform) -> list[str]:
    names, offset = [], 0
    while True:
        answer = requests.get(
            str(platform.endpoints()["catalog"]), params={"limit": 1000, "offset": offset}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        page = [entry["name"] for entry in answer.json()["products"]]
        names += page
        offset += len(page)
        if not page:
            return names


def test_real_shaped_products_are_cataloged_once_and_bad_ones_quarantined_without_a_retry(
    platform: EmbeddedPlatform, tmp_path: Path, samples: Path, broker_outcomes: Outcomes
) -> None:
    good, bad = good_products(tmp_path, samples), bad_products(tmp_path)
    assert sum(1 for p in good for _ in product_files(p)) > 1000  # real shapes: well over a thousand objects
    store, inbox = platform.object_store(), platform.settings.inbox_bucket
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda product: upload_product(store, inbox, product), [*good, *bad]))

    quarantine = Quarantine(store, platform.settings)
    expected = sorted(name for names in good.values() for name in names)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = len(set(cataloged_names(platform)) & set(expected)) == len(expected)
        if done and len(quarantine.list()) >= len(bad) and settled(platform):
            break
        time.sleep(0.5)

    assert sorted(cataloged_names(platform)) == expected  # each good product once, no bad one
    rejected = {entry.name: entry for entry in quarantine.list()}
    for product, (reason, named) in bad.items():
        assert product.name in rejected, f"{product.name} is not in the quarantine"
        assert rejected[product.name].reason == reason
        assert named in rejected[product.name].detail
    assert store.list(inbox) == []

    for log in (platform.data_dir / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"a traceback in {log.name}: {text[text.find('Traceback') - 500 :][:3000]}"
    deliveries = platform.broker.deliveries()
    retried = [d for d in deliveries if d["attempts"] != 1 or d["state"] != "delivered"]
    failures = [line for line in broker_outcomes.lines if "-> delivered" not in line]
    assert not retried, f"deliveries not made at the first attempt: {retried[:5]}; the broker said: {failures[:10]}"
    assert all(d["last_status"] < 500 for d in deliveries)
    ingested = [d["event_id"] for d in deliveries if d["type"] == ProductIngested.TYPE]
    assert len(ingested) == len(set(ingested)) == len(expected) + 1  # the garbled one is ingested, then rejected
    assert ingest_logged_requests(platform) <= 1.0


def ingest_logged_requests(platform: EmbeddedPlatform) -> float:
    """The worst ratio of object-store requests to 5N + 10 that the ingest function logged (N: listed objects)."""
    with sqlite3.connect(platform.data_dir / "catalog.db") as db:
        listed = dict(db.execute("SELECT name, listed FROM inbox_products WHERE listed IS NOT NULL"))
    lines = (platform.data_dir / "logs" / "ingest.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    logged = [(r["product"], r["requests"]) for r in records if "requests" in r]
    assert logged, "the ingest function logs the requests of each product it settles"
    return max(int(made) / (5 * (listed[name] + 1) + 10) for name, made in logged if name in listed)
