"""Fuzzing the event edges: whatever arrives, the functions answer < 500 with a JSON error, never a traceback.

CloudEvents in both content modes (valid and broken envelopes), S3/SeaweedFS notification records, object keys
of any characters, and product XML documents, run against the real views (moto S3, SQLite ledger), with a
bounded number of examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from events import ObjectCreated, ProductIngested, make_event, to_http
from shared import ports
from shared.catalog import open_catalog
from shared.catalog.cataloging import Cataloguer
from shared.catalog.database import CatalogDatabase
from shared.ingestion.inbox import Arrival, Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.notify import publish_notifications
from shared.ingestion.upload import upload_product
from shared.products import ManifestError, extract_metadata, recognise, write_product
from shared.products.manifest import read_manifest
from shared.runtime import event_endpoint
from shared.settings import Settings
from shared.storage.objects import ObjectStore
from tests.conftest import EVENT_FIXTURES

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The ingest and catalog views over moto S3, the notify view over a recording sink."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with mock_aws():
        config = Settings(s3_access_key="testing", s3_secret_key="testing")
        store = ObjectStore(config)
        store.ensure_bucket(config.inbox_bucket)
        inbox = Inbox(store, config, InboxLedger(CatalogDatabase(f"sqlite:///{tmp / 'ledger.db'}")))
        product = write_product(tmp, "IW_GRDH_1S", START)
        keys = upload_product(store, config.inbox_bucket, product)
        (ingested,) = [r for k in keys if (r := inbox.ingest(product.name, Arrival(k, START))) is not None]
        cataloguer = Cataloguer(store, open_catalog("sqlite:///:memory:"), config)
        app = flask.Flask(__name__)
        ingest = event_endpoint("ingest", inbox.on_object_created, accepts=(ObjectCreated,))
        catalog = event_endpoint("catalog", cataloguer.on_product_ingested, accepts=(ProductIngested,))
        app.add_url_rule("/ingest", "ingest", lambda: ingest(flask.request), methods=["POST"])
        app.add_url_rule("/catalog", "catalog", lambda: catalog(flask.request), methods=["POST"])
        app.add_url_rule("/notify", "notify", lambda: publish_notifications(flask.request), methods=["POST"])
        yield {"client": app.test_client(), "inbox": inbox, "ingested": ingested, "product": product}


@pytest.fixture(autouse=True)
def recording_sink(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    published: list[Any] = []

    class Sink:
        def publish(self, event: Any) -> None:
            headers, _ = to_http(event)  # what the real publisher sends: it must be something HTTP can carry
            for value in headers.values():
                value.encode("ascii")
            published.append(event)

    monkeypatch.setattr(ports, "sink", lambda: Sink())
    return published


def assert_answered(response: Any) -> None:
    assert response.status_code < 500, response.data[:500]
    if response.status_code >= 400:
        assert response.is_json and response.json["error"]["message"], response.data[:500]


# -- strategies -------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
object_keys = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "..", "../../etc/passwd", "a/./b", "x" * 1100, "Île\n中.txt", "/leading", "a//b", "a\r\nb"]),
    st.builds(lambda a, b: f"{a}/{b}", st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20)),
)
deep_json = st.integers(min_value=65, max_value=100_000).map(lambda n: "[" * n + "]" * n)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A structured-mode CloudEvent: valid, or with attributes missing, of the wrong JSON type, odd names."""
    data = ObjectCreated(store="aws", bucket="rs-inbox", key=draw(object_keys), size=1, event_time=START)
    _, body = to_http(make_event(data, source="/fuzz"), structured=True)
    record: dict[str, Any] = json.loads(body)
    for name in draw(st.lists(st.sampled_from(sorted(record)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del record[name]
        else:
            record[name] = draw(json_values)
    for name, value in draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)).items():
        record[name] = value
    return record


@st.composite
def s3_records(draw: st.DrawFn) -> Any:
    """The shapes notify accepts (AWS, MinIO, SeaweedFS fixtures), with members replaced by anything."""
    name = draw(st.sampled_from(["s3-aws-object-created.json", "s3-minio-webhook.json", "seaweedfs-filer-create.json"]))
    body: Any = json.loads((EVENT_FIXTURES / name).read_text())
    paths = [("Records",), ("Records", 0), ("Records", 0, "s3"), ("Records", 0, "s3", "object", "key")]
    paths += [("Records", 0, "s3", "object", "size"), ("Records", 0, "eventTime"), ("key",), ("message",)]
    paths += [("message", "new_entry"), ("message", "new_entry", "attributes"), ("message", "new_entry", "chunks")]
    for path in draw(st.lists(st.sampled_from(paths), max_size=2)):
        target = body
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = draw(json_values | object_keys)
        except (KeyError, IndexError, TypeError):
            pass
    return body


# -- the properties ---------------------------------------------------------------------------------


@FUZZ
@given(record=envelopes(), path=st.sampled_from(["/ingest", "/catalog"]))
def test_structured_events_of_any_shape_get_an_answer(views: dict[str, Any], record: dict[str, Any], path: str) -> None:
    response = views["client"].post(
        path, data=json.dumps(record), headers={"Content-Type": "application/cloudevents+json"}
    )
    assert_answered(response)


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["ce-id", "ce-source", "ce-type", "ce-specversion", "ce-subject", "ce-x", "content-type"]),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30),
    ),
    body=st.binary(max_size=200) | deep_json.map(str.encode),
)
def test_binary_events_with_odd_headers_and_bodies_get_an_answer(
    views: dict[str, Any], headers: dict[str, str], body: bytes
) -> None:
    assert_answered(views["client"].post("/ingest", data=body, headers=headers))


@FUZZ
@given(key=object_keys)
def test_object_created_for_any_key_gets_an_answer(views: dict[str, Any], key: str) -> None:
    inbox: Inbox = views["inbox"]
    event = ObjectCreated(store="aws", bucket=inbox.settings.inbox_bucket, key=key, size=1, event_time=START)
    headers, body = to_http(make_event(event, source="/fuzz"))
    assert_answered(views["client"].post("/ingest", data=body, headers=headers))


@FUZZ
@given(body=s3_records() | json_values | deep_json)
def test_notifications_of_any_shape_get_an_answer(views: dict[str, Any], body: Any) -> None:
    response = views["client"].post("/notify", data=body if isinstance(body, str) else json.dumps(body))
    assert_answered(response)


@FUZZ
@given(key=st.text(max_size=80), bucket=st.text(max_size=30))
def test_forged_announcements_get_an_answer_and_change_nothing(views: dict[str, Any], key: str, bucket: str) -> None:
    ingested: ProductIngested = views["ingested"]
    forged = ingested.model_copy(update={"key": key, "bucket": bucket})
    headers, body = to_http(make_event(forged, source="/fuzz"))
    response = views["client"].post("/catalog", data=body, headers=headers)
    assert_answered(response)
    assert response.status_code == 422 or (key, bucket) == (ingested.key, ingested.bucket)


ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><x>&c;</x>'
)
XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'


@st.composite
def manifests(draw: st.DrawFn, original: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "namespace", "entities", "splice"]))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original)))]
    if kind == "namespace":
        return original.replace(b"urn:ccsds:schema:xfdu:1", draw(st.text(max_size=30)).encode())
    if kind == "entities":
        return draw(st.sampled_from([ENTITY_BOMB, XXE]))
    at = draw(st.integers(0, len(original)))
    return original[:at] + draw(st.binary(max_size=40)) + original[at:]


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_product(tmp_path_factory.mktemp("xml"), "IW_GRDH_1S", START) / "manifest.safe"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_product_xml_mutations_are_refused_as_manifest_errors_and_entities_stay_refused(
    manifest_file: Path, data: st.DataObject
) -> None:
    document = data.draw(manifests(manifest_file.read_bytes()))
    product = recognise(manifest_file.parent.name)
    for read in (read_manifest, lambda d: extract_metadata(product, d, document_name="manifest.safe")):
        try:
            read(document)
        except ManifestError:
            continue
        except (ValueError, LookupError, AttributeError, TypeError):
            continue  # what the catalog step quarantines as unreadable metadata (see cataloging.py)
        assert document not in (ENTITY_BOMB, XXE), "an entity declaration was accepted"
