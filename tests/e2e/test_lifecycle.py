"""Eviction on the embedded platform (issue 18's acceptance): a due product's objects are gone, it stays listed
with Online=false in OData, its $value answers 410 with a message; an input of a waiting job is kept. The
retention rules of this platform make every S1 L1 slice due at publication."""

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from events import to_http
from shared.ingestion.upload import upload_product
from shared.operations.archive import EventArchive, EventSelection
from shared.platform.embedded import EmbeddedPlatform
from shared.platform.ping import ping_event
from shared.processing.jobs import JobStore
from shared.products import write_product
from shared.security.senders import sender_headers
from tests.e2e.test_platform import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RULES = """
rules:
  - {name: slices-at-once, family: L1_SLICE, days: 0}
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPlatform]:
    data = tmp_path_factory.mktemp("lifecycle")
    (data / "retention.yaml").write_text(RULES)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REFSYS_RETENTION_RULES_FILE", str(data / "retention.yaml"))  # the functions inherit it
        running = EmbeddedPlatform(data / "platform")
        running.start()
        # The tests tick themselves: a timer tick in the middle (every 10 minutes) would evict before they look.
        running.pings.stop()
        yield running
        running.stop(storage_timeout=3.0)


def odata_entry(platform: EmbeddedPlatform, name: str) -> dict | None:
    odata = str(platform.endpoints()["odata"])
    found = requests.get(f"{odata}/Products", params={"$filter": f"Name eq '{name}'"}, timeout=10).json()["value"]
    return found[0] if found else None


def refsys(platform: EmbeddedPlatform, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shared.cli", *args, "--data-dir", str(platform.data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def tick(platform: EmbeddedPlatform) -> None:
    (source,) = [s for s in platform.topology.ping_sources() if s.name == "lifecycle-timer"]
    headers, body = to_http(ping_event(source, datetime.now(UTC)))
    headers.update(sender_headers(platform.settings.event_secret))  # as the platform's PingTimer sends it
    url = platform.endpoints()["functions"]["lifecycle"] + source.sink.uri  # type: ignore[index, operator]
    assert requests.post(url, data=body, headers=headers, timeout=120).status_code == 202


def test_a_due_product_is_evicted_listed_offline_and_gone_and_a_waiting_jobs_input_is_kept(
    platform: EmbeddedPlatform, tmp_path: Path
) -> None:
    due = write_product(tmp_path, "IW_GRDH_1S", START, seed=1)
    needed = write_product(tmp_path, "IW_GRDH_1S", START + timedelta(hours=1), seed=2)
    # The job exists before its input is cataloged, as a real waiting job would.
    now = datetime.now(UTC)
    JobStore(platform.settings.catalog_url).open_job("S1_L2:test", "S1_L2", needed.name, now, now + timedelta(days=1))
    for product in (due, needed):
        upload_product(platform.object_store(), platform.settings.inbox_bucket, product)
    entries = {p.name: wait_for(lambda p=p: odata_entry(platform, p.name), f"{p.name} in OData") for p in (due, needed)}
    assert all(e["Online"] is True and e["EvictionDate"] == e["PublicationDate"] for e in entries.values())  # type: ignore[index]

    lifecycle = str(platform.endpoints()["lifecycle"])
    dry = requests.get(f"{lifecycle}/due", timeout=30).json()["due"]
    assert {d["name"]: d["action"] for d in dry} == {due.name: "evict", needed.name: "keep"}
    assert next(d for d in dry if d["name"] == needed.name)["reason"] == "input of job S1_L2:test"

    tick(platform)
    gone = odata_entry(platform, due.name)
    assert gone is not None and gone["Online"] is False and gone["EvictionDate"] == entries[due.name]["EvictionDate"]  # type: ignore[index]
    objects, bucket = platform.object_store(), "rs-s1-l1-slices"
    assert objects.list(bucket, f"{due.name}/") == []
    odata = str(platform.endpoints()["odata"])
    value = requests.get(f"{odata}/Products({gone['Id']})/$value", timeout=30, allow_redirects=False)
    assert value.status_code == 410
    assert value.json()["error"]["message"].startswith(f"product {due.name} is offline since ")
    kept = odata_entry(platform, needed.name)
    assert kept is not None and kept["Online"] is True and objects.list(bucket, f"{needed.name}/")
    archive = EventArchive(str(platform.settings.event_archive_url))
    announced = wait_for(
        lambda: archive.select(EventSelection(types=("org.refsys.product.evicted.v1",))), "product.evicted"
    )
    assert [a.record["subject"] for a in announced] == [due.name]  # type: ignore[attr-defined]

    tick(platform)  # a second tick changes nothing and announces nothing again
    assert len(archive.select(EventSelection(types=("org.refsys.product.evicted.v1",)))) == 1


def test_the_operators_commands_pin_evict_and_explain(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    product = write_product(tmp_path, "IW_GRDH_1S", START + timedelta(hours=2), seed=3)
    upload_product(platform.object_store(), platform.settings.inbox_bucket, product)
    wait_for(lambda: odata_entry(platform, product.name), f"{product.name} in OData")
    pinned = refsys(platform, "lifecycle", "pin", product.name, "--reason", "campaign")
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert odata_entry(platform, product.name)["EvictionDate"] == "9999-12-31T23:59:59.999Z"  # type: ignore[index]
    due = json.loads(refsys(platform, "lifecycle", "due").stdout)["due"]
    assert {"name": product.name, "action": "keep", "reason": "pinned"}.items() <= next(
        d for d in due if d["name"] == product.name
    ).items()
    refused = refsys(platform, "lifecycle", "evict", product.name)
    assert refused.returncode == 2 and json.loads(refused.stdout)["error"]["code"] == "Pinned"
    assert refsys(platform, "lifecycle", "unpin", product.name).returncode == 0
    evicted = refsys(platform, "lifecycle", "evict", product.name)
    assert evicted.returncode == 0 and json.loads(evicted.stdout)["rule"] == "operator"
    assert odata_entry(platform, product.name)["Online"] is False  # type: ignore[index]
    rules = json.loads(refsys(platform, "lifecycle", "rules").stdout)
    assert [r["name"] for r in rules["rules"]] == ["slices-at-once"]
