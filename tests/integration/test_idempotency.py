"""The processed-events record on both databases."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from events import ObjectCreated, make_event
from shared.bus.idempotency import open_processed_events

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_a_recorded_reply_is_found_again_by_function_source_and_id(url: str) -> None:
    store = open_processed_events(url)
    reply = make_event(
        ObjectCreated(store="aws", bucket="b", key="k", size=1, event_time=datetime.now(UTC)), source="/x"
    )
    assert store.lookup("ingest", "/src", "id-1") is None
    store.record("ingest", "/src", "id-1", reply)
    store.record("ingest", "/src", "id-1", reply)  # a concurrent duplicate: no error, still one record
    found = store.lookup("ingest", "/src", "id-1")
    assert found is not None and found.reply is not None
    assert (found.reply["id"], found.reply.data) == (reply["id"], reply.data)
    assert store.lookup("catalog", "/src", "id-1") is None  # per function
    store.record("catalog", "/src", "id-2", None)
    done = store.lookup("catalog", "/src", "id-2")
    assert done is not None and done.reply is None
