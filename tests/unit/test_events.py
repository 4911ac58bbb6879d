import json
from datetime import UTC, datetime

import pytest

from events import (
    EVENT_MODELS,
    InvalidEvent,
    InvalidPayload,
    ObjectCreated,
    ProductCataloged,
    ProductEvicted,
    ProductIdentity,
    ProductIngested,
    ProductRejected,
    RejectionReason,
    make_event,
    parse_data,
    parse_http,
    to_http,
)
from events.naming import ROUTING_EXTENSIONS
from events.processing import (
    FailureReason,
    JobCompleted,
    JobFailed,
    JobInput,
    JobReady,
    ProducedProduct,
    TaskRun,
)
from events.schemas import SCHEMA_DIR, render

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PRODUCT = ProductIdentity(
    product_id="0b4f8d3e-6f0e-5d8c-9b0a-1f3e4d5c6b7a",
    name="S1A_IW_GRDH_1SDV_20240501T120000_20240501T120025_053600_0683A1_ABCD.SAFE",
    mission="S1",
    satellite="A",
    product_type="IW_GRDH_1S",
    level="L1",
    family="L1_SLICE",
)
RUN = dict(
    run_id="0123", job_key="s1-l1-iw:S1A_IW_RAW__0SDV", processor="s1-l1-iw", task_table="IW_RAW__0_SLC__1_GRDH_1.xml",
    processor_name="IW_RAW__0_SLC__1_GRDH_1", processor_version="3.52", mission="S1", satellite="A",
    inputs=("S1A_IW_RAW__0SDV",), tasks=(TaskRun(name="PSC", exit_code=0, seconds=1.0),), started=NOW, finished=NOW,
)  # fmt: skip
EXAMPLES = [
    ObjectCreated(store="seaweedfs", bucket="rs-inbox", key="a/b.txt", size=3, etag="abc", event_time=NOW),
    ProductIngested(
        product=PRODUCT,
        bucket="rs-s1-l1-slices",
        key=PRODUCT.name + "/",
        content_length=10,
        checksum="d41d8cd98f00b204e9800998ecf8427e",
        content_type="application/octet-stream",
        manifest_key=PRODUCT.name + "/manifest.safe",
        inbox_time=NOW,
        ingestion_time=NOW,
    ),
    ProductRejected(
        name="junk.bin",
        reason=RejectionReason.UNRECOGNISED,
        detail="not a product",
        quarantine_bucket="rs-quarantine",
        quarantine_key="junk.bin.reason.json",
        rejected_time=NOW,
    ),
    ProductCataloged(
        product=PRODUCT,
        bucket="rs-s1-l1-slices",
        key=PRODUCT.name + "/",
        content_length=10,
        validity_start=NOW,
        validity_stop=NOW,
        publication_time=NOW,
    ),
    ProductEvicted(
        product=PRODUCT, bucket="rs-s1-l1-slices", key=PRODUCT.name + "/", eviction_time=NOW, rule="S1 L1: 30 days"
    ),
    JobReady(
        job_key="s1-l1-iw:" + PRODUCT.name,
        processor="s1-l1-iw",
        task_table="IW_RAW__0_SLC__1_GRDH_1.xml",
        processor_name="IPF",
        processor_version="003.71",
        mission="S1",
        satellite="A",
        window_start=NOW,
        window_stop=NOW,
        timed_out=False,
        job_order="<Ipf_Job_Order/>",
        workdir="/data/work",
        inputs=(JobInput(name=PRODUCT.name, product_type="IW_RAW__0S", bucket="b", key="k/", local_path="in/"),),
        image="refsys/ipf-simulator:0.1",
    ),
    JobCompleted(
        **RUN,
        outputs=(
            ProducedProduct(
                name=PRODUCT.name, product_type="IW_GRDH_1S", bucket="rs-inbox", key=PRODUCT.name + "/", size=10
            ),
        ),
        warnings=("task LPC2 exited 5 (warning)",),
        durations={"download": 0.1, "processing": 1.0, "upload": 0.1, "total": 1.2},
        bytes_downloaded=10,
        bytes_uploaded=10,
    ),
    JobFailed(
        **RUN,
        reason=FailureReason.TASK_ERROR,
        message="task PSC failed (exit 139)",
        exit_code=139,
        task="PSC",
        log_tail=("... [E] segmentation fault",),
        workdir_bucket="rs-failed-workdir",
        workdir_key="0123/",
    ),
]


def test_every_event_type_has_an_example() -> None:
    assert {type(e).TYPE for e in EXAMPLES} == set(EVENT_MODELS)


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
@pytest.mark.parametrize("data", EXAMPLES, ids=lambda d: type(d).__name__)
def test_events_round_trip_through_http(data, structured: bool) -> None:
    event = make_event(data, source="/refsys/functions/test")
    headers, body = to_http(event, structured=structured)
    parsed = parse_http(headers, body)
    assert parse_data(parsed) == data
    assert parsed["id"] == data.event_id()
    assert parsed["type"] == type(data).TYPE
    for name, value in data.routing().items():
        assert parsed[name] == value


def test_types_are_reverse_dns_and_versioned() -> None:
    for event_type in EVENT_MODELS:
        assert event_type.startswith("org.refsys.")
        assert event_type.rsplit(".", 1)[1] == "v1"


def test_product_events_carry_the_routing_attributes_triggers_filter_on() -> None:
    event = make_event(EXAMPLES[1], source="/x")
    assert (event["mission"], event["producttype"], event["productfamily"], event["productlevel"]) == (
        "S1",
        "IW_GRDH_1S",
        "L1_SLICE",
        "L1",
    )


def test_extension_names_follow_the_cloudevents_rule() -> None:
    for name in ROUTING_EXTENSIONS:
        assert name.isalnum() and name.islower() and 1 <= len(name) <= 20


def test_ids_are_deterministic_so_redeliveries_are_recognisable() -> None:
    again = ObjectCreated(store="aws", bucket="rs-inbox", key="a/b.txt", size=3, etag="abc", event_time=NOW)
    assert again.event_id() == EXAMPLES[0].event_id()  # the same object version, whoever reported it
    other = ObjectCreated(store="aws", bucket="rs-inbox", key="a/b.txt", size=3, etag="abd", event_time=NOW)
    assert other.event_id() != EXAMPLES[0].event_id()
    put_again = again.model_copy(update={"event_time": NOW.replace(minute=5)})
    assert put_again.event_id() != again.event_id()  # the same bytes arriving again are a new arrival


def test_schemas_in_the_repo_are_current() -> None:
    expected = render()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert on_disk == expected, "event schemas are stale: run `make schemas`"


def test_schemas_validate_the_examples() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for data in EXAMPLES:
        schema = json.loads(render()[f"{type(data).TYPE}.json"])
        jsonschema.validate(data.model_dump(mode="json"), schema)


@pytest.mark.parametrize(
    ("headers", "body", "says"),
    [
        ({}, b"", "empty request"),
        ({"content-type": "application/json"}, b'{"Records": []}', "specversion"),
        ({"content-type": "application/cloudevents+json"}, b"{not json", "not a valid CloudEvent"),
        ({"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s"}, b"{}", "id"),
    ],
)
def test_a_request_that_is_no_cloudevent_says_what_is_wrong(headers, body, says: str) -> None:
    with pytest.raises(InvalidEvent, match=says):
        parse_http(headers, body)


def test_unknown_type_and_bad_data_are_payload_errors() -> None:
    event = make_event(EXAMPLES[0], source="/x")
    event["type"] = "org.example.other.v1"
    with pytest.raises(InvalidPayload, match="unknown event type"):
        parse_data(event)
    event = make_event(EXAMPLES[0], source="/x")
    event.data = {"bucket": "rs-inbox"}
    with pytest.raises(InvalidPayload, match="key: Field required"):
        parse_data(event)
