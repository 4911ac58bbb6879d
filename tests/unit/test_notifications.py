"""Every notification format becomes the same ObjectCreated event."""

import json

import flask
import pytest

from shared.ingestion.notifications import UnknownNotification, object_events
from shared.ingestion.notify import publish_notifications
from tests.conftest import EVENT_FIXTURES


def load(name: str):
    return json.loads((EVENT_FIXTURES / name).read_text())


def test_aws_records_keep_created_objects_and_decode_keys() -> None:
    (event,) = object_events(load("s3-aws-object-created.json"))  # the ObjectRemoved record is not ours
    assert event.store == "aws"
    assert event.bucket == "rs-inbox"
    assert event.key.endswith("/measurement/s1a-iw-grd-vv copy.tiff")  # '+' is an encoded space
    assert (event.size, event.etag, event.sequencer) == (1024, "d41d8cd98f00b204e9800998ecf8427e", "0055AED6DCD90281E5")
    assert event.event_time.utcoffset() is not None


def test_minio_event_names_and_percent_encoded_keys() -> None:
    (event,) = object_events(load("s3-minio-webhook.json"))
    assert event.store == "minio"
    assert event.key.endswith(".SEN3/Oa01_radiance.nc")


def test_moto_style_times_without_zone_are_utc() -> None:
    body = load("s3-aws-object-created.json")
    body["Records"][0]["eventTime"] = "2026-11-24T18:27:15.046796"
    (event,) = object_events(body)
    assert event.event_time.isoformat().endswith("+00:00")


def test_the_configuration_test_event_is_ignored() -> None:
    assert object_events({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "rs-inbox"}) == []


def test_seaweedfs_create_becomes_an_object_event() -> None:
    body = load("seaweedfs-filer-create.json")
    (event,) = object_events(body)
    assert event.store == "seaweedfs"
    assert event.size > 0
    assert event.bucket and event.key and not event.key.startswith("/")


def test_seaweedfs_deletes_directories_and_system_entries_are_ignored() -> None:
    assert object_events(load("seaweedfs-filer-delete.json")) == []
    body = load("seaweedfs-filer-create.json")
    body["message"]["new_entry"]["is_directory"] = True
    assert object_events(body) == []
    body = load("seaweedfs-filer-create.json")
    body["key"] = "/buckets/.system/x"
    body["message"]["new_entry"]["name"] = "x"
    assert object_events(body) == []


@pytest.mark.parametrize("body", [{"hello": "world"}, [], "text"])
def test_unknown_bodies_are_refused_with_a_message(body) -> None:
    with pytest.raises(UnknownNotification, match="expected S3 event records"):
        object_events(body)


def test_seaweedfs_etag_is_the_one_s3_clients_see() -> None:
    (event,) = object_events(load("seaweedfs-filer-create.json"))
    assert event.etag == "5d41402abc4b2a76b9719d911017c592"  # md5("hello"), as a HEAD request answers


def test_seaweedfs_multipart_parts_are_not_objects() -> None:
    body = load("seaweedfs-filer-create.json")
    body["key"] = "/buckets/rs-inbox/.uploads/0a1b/0001.part"
    body["message"]["new_entry"]["name"] = "0001.part"
    assert object_events(body) == []


def created(**object_members: object) -> dict:
    record = load("s3-aws-object-created.json")["Records"][0]
    record["s3"]["object"] = {**record["s3"]["object"], **object_members}
    return record


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"Records": 5}, "Records must be an array"),
        ({"Records": ["x"]}, "Records[0] must be an object"),
        ({"Records": [{"eventName": "ObjectCreated:Put", "s3": []}]}, "Records[0].s3 must be an object"),
        ({"Records": [{"eventName": 7}]}, "Records[0].eventName must be a string"),
        ({"Records": [created(key=["a"])]}, "Records[0].s3.object.key must be a string"),
        ({"Records": [created(key="")]}, "needs a bucket name and a key"),
        ({"Records": [created(size={"n": 1})]}, "Records[0].s3.object.size must be an integer"),
        ({"event_type": "create", "key": "/buckets/rs-inbox/x", "message": "no"}, "message must be an object"),
        ({"event_type": "create", "key": 3, "message": {"new_entry": {"name": "x"}}}, "key must be a string"),
    ],
)
def test_records_of_the_wrong_shape_are_refused_saying_what_is_wrong(body: object, says: str) -> None:
    with pytest.raises(UnknownNotification) as refused:
        object_events(body)
    assert says in str(refused.value)


def test_the_notify_function_answers_400_in_json_for_a_record_of_the_wrong_shape() -> None:
    app = flask.Flask(__name__)
    app.add_url_rule("/", "notify", lambda: publish_notifications(flask.request), methods=["POST"])
    for body in (json.dumps({"Records": ["x"]}).encode(), b"[" * 100_000 + b"]" * 100_000):
        response = app.test_client().post("/", data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json["error"]["message"]
