"""An operator works the dead letters of a running platform through `refsys deadletter` (the operations API):
a malformed letter is skipped and reported while the others restart; count by error, resubmit, delete."""

from __future__ import annotations

import json
import sqlite3

import pytest
import requests

from events import ObjectCreated, make_event, to_http
from shared.platform.embedded import EmbeddedPlatform
from shared.security.senders import sender_headers
from tests.e2e.test_operator import refsys
from tests.e2e.test_platform import START, publish, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]


def pending(platform: EmbeddedPlatform) -> list[dict]:
    listed = refsys(platform, "deadletter", "list")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_a_malformed_letter_is_skipped_while_the_others_restart(platform: EmbeddedPlatform) -> None:
    poison = []
    for i in range(3):
        created = ObjectCreated(store="aws", bucket="rs-inbox", key=f"e2e-dl/{i}", size=1, event_time=START)
        event = make_event(created, source="/refsys/test")
        event.data = {"bucket": "rs-inbox", "key": f"e2e-dl/{i}"}  # no size, no time: ingest answers 422
        publish(platform, event)
        poison.append(event["id"])
    # The fourth, as the user trial's: an event whose type is a list, straight to the dead-letter sink.
    created = ObjectCreated(store="aws", bucket="rs-inbox", key="e2e-dl/x", size=1, event_time=START)
    good = make_event(created, source="/refsys/test")
    headers, body = to_http(good, structured=True)
    malformed = {**json.loads(body), "type": [good["type"], "org.refsys.other.v1"], "knativeerrorcode": 422}
    sink = str(platform.endpoints()["functions"]["deadletter"])  # type: ignore[index]
    answer = requests.post(
        sink,
        data=json.dumps(malformed),
        headers={**headers, **sender_headers(platform.settings.event_secret)},
        timeout=10,
    )
    assert answer.status_code == 202

    letters = wait_for(lambda: len(found := pending(platform)) == 4 and found, "the four dead letters")
    assert isinstance(letters, list)
    by_event = {letter["eventId"]: letter for letter in letters}
    assert {by_event[i]["function"] for i in poison} == {"ingest"}
    (bad,) = [letter for letter in letters if letter["problem"]]
    assert "'type'" in bad["problem"]

    counted = refsys(platform, "deadletter", "count", "--error-code", "422", "--function", "ingest")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["byType"] == {"org.refsys.storage.object.created.v1": 3}

    restarted = refsys(platform, "deadletter", "restart")
    assert restarted.returncode == 2, restarted.stderr  # something was skipped
    outcome = json.loads(restarted.stdout)
    assert sorted(outcome["idsWithSuccess"]) == sorted(by_event[i]["id"] for i in poison)
    assert [s["id"] for s in outcome["idsSkipped"]] == [bad["id"]] and "'type'" in outcome["idsSkipped"][0]["reason"]
    assert bad["id"] in restarted.stderr

    # The malformed letter, corrected: an invalid edit is refused with the reason, a valid one goes out.
    refused = refsys(platform, "deadletter", "resubmit", bad["id"], "--set", "type=org.refsys.product.ingested.v1")
    assert refused.returncode == 1 and "product" in refused.stderr
    fixed = refsys(platform, "deadletter", "resubmit", bad["id"], "--set", f"type={good['type']}")
    assert fixed.returncode == 0, fixed.stderr
    new_id = json.loads(fixed.stdout)["eventId"]
    with sqlite3.connect(platform.data_dir / "broker.db") as db:
        assert db.execute("SELECT type FROM events WHERE id = ?", (new_id,)).fetchall() == [(good["type"],)]
    assert refsys(platform, "deadletter", "show", bad["id"], "--state", "restarted").returncode == 0

    # The restarted poison fails again (422) and is back; the operator deletes one, which stays readable.
    again = wait_for(lambda: len(found := pending(platform)) == 3 and found, "the restarted letters back")
    assert isinstance(again, list)
    victim = again[0]["id"]
    assert refsys(platform, "deadletter", "delete", victim).returncode == 0
    assert refsys(platform, "deadletter", "show", victim).returncode == 2
    shown = refsys(platform, "deadletter", "show", victim, "--state", "deleted")
    assert shown.returncode == 0 and json.loads(shown.stdout)["history"][-1]["action"] == "delete"
    assert len(pending(platform)) == 2
