"""Subscriptions: request bodies as CDSE documents them, the outbox store, matching of catalog events, push
delivery with backoff and order, PULL read/ack, replays, and the OData routes with owners (SQLite, no servers)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from events import ProductEvicted
from shared.catalog import CatalogEntry, CatalogStore, open_catalog
from shared.catalog.announce import cataloged
from shared.catalog.odata.auth import TokenVerifier
from shared.catalog.odata.service import ODataService
from shared.security.access import AccessPolicy
from shared.subscriptions import odata as subscriptions_odata
from shared.subscriptions.delivery import SEQUENCE_HEADER, PushPolicy
from shared.subscriptions.matching import notify
from shared.subscriptions.model import BadBody, Event, Status, ack_id, parse_ack_id, parse_create, parse_update
from shared.subscriptions.service import SubscriptionService
from shared.subscriptions.store import SubscriptionStore
from tests.fixtures.catalog import T0, entry

S1_FILTER = "Collection/Name eq 'SENTINEL-1' and startswith(Name,'S1A_IW')"


def evicted(e: CatalogEntry, when: datetime) -> ProductEvicted:
    ref = cataloged(e).product
    return ProductEvicted(product=ref, bucket=e.bucket, key=e.key, eviction_time=when, rule="S1 L1: 30 days")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """A subscriber's endpoint as ``requests.post`` sees it: answers ``statuses`` in turn (then 200).

    Keeps what it took (2xx)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int | Exception] = []

    def __call__(self, url: str, **kwargs: Any) -> Any:
        answer = self.statuses.pop(0) if self.statuses else 200
        if isinstance(answer, Exception):
            raise answer
        if 200 <= answer < 300:  # what the subscriber took
            self.received.append({"url": url, **kwargs})
        return type("Response", (), {"status_code": answer})()


@pytest.fixture
def catalog() -> Iterator[CatalogStore]:
    store = open_catalog("sqlite:///:memory:")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(tmp_path: Path, catalog: CatalogStore, clock: Clock) -> SubscriptionService:
    store = SubscriptionStore(f"sqlite:///{tmp_path / 'catalog.db'}", clock=clock)
    return SubscriptionService(store, lambda: catalog, PushPolicy(retry_base_s=10, retry_max_s=300), 5, 3600.0,
                               post=Endpoint())  # fmt: skip


def endpoint_of(service: SubscriptionService) -> Endpoint:
    assert isinstance(service.post, Endpoint)
    return service.post


def subscribe(service: SubscriptionService, owner: str = "", **body: Any) -> str:
    return service.store.create(parse_create(body), owner).id


# -- request bodies -----------------------------------------------------------------------------


def test_an_empty_body_makes_a_running_pull_subscription_of_created_products_for_everything() -> None:
    new = parse_create({})
    assert (new.filter_param, new.events, new.status, new.priority, new.endpoint.url) == (
        "",
        (Event.CREATED,),
        Status.RUNNING,
        1,
        None,
    )


def test_the_cdse_push_example_body_is_taken_as_it_is() -> None:
    new = parse_create(
        {
            "StageOrder": True,
            "FilterParam": "Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.StringAttribute/any("
            "att:att/Name eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'S2MSI2A')",
            "Priority": 1,
            "NotificationEndpoint": "https://userservice/notification",
            "NotificationEpUsername": "serviceusername",
            "NotificationEpPassword": "********",
            "Status": "running",
            "SubscriptionEvent": ["created"],
        }
    )
    assert new.endpoint.url == "https://userservice/notification" and new.endpoint.username == "serviceusername"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"FilterParam": "Name eq"}, "FilterParam"),
        ({"FilterParam": "Nonsense eq 1"}, "FilterParam"),
        ({"SubscriptionEvent": ["created", "arrived"]}, "arrived"),
        ({"SubscriptionEvent": []}, "SubscriptionEvent"),
        ({"Status": "cancelled"}, "running or paused"),
        ({"Status": "sleeping"}, "Status"),
        ({"Priority": 0}, "Priority"),
        ({"Priority": True}, "Priority"),
        ({"StageOrder": "yes"}, "StageOrder"),
        ({"NotificationEndpoint": "ftp://host/x"}, "http(s)"),
        ({"NotificationEpUsername": "u", "NotificationEpPassword": "p"}, "need a NotificationEndpoint"),
        ({"NotificationEndpoint": "http://h/", "NotificationEpUsername": "u"}, "go together"),
        ({"SubscriptionType": "push"}, "unknown field"),
        ([], "JSON object"),
    ],
)
def test_a_bad_create_body_is_refused_saying_what_is_wrong(body: Any, says: str) -> None:
    with pytest.raises(BadBody, match=None) as raised:
        parse_create(body)
    assert says in raised.value.message and raised.value.status == 400


def test_a_pull_subscription_may_change_its_status_only(service: SubscriptionService) -> None:
    pull = service.store.get(subscribe(service))
    assert pull is not None
    assert parse_update({"Status": "paused"}, pull).status is Status.PAUSED
    with pytest.raises(BadBody, match="Status only"):
        parse_update({"NotificationEndpoint": "http://h/"}, pull)
    with pytest.raises(BadBody, match="nothing to update"):
        parse_update({}, pull)


def test_an_ack_id_names_its_notification_and_its_subscription_only() -> None:
    assert parse_ack_id(ack_id(42, "sub-1"), "sub-1") == 42
    with pytest.raises(Exception, match="another subscription"):
        parse_ack_id(ack_id(42, "sub-1"), "sub-2")
    with pytest.raises(Exception, match="AckId"):
        parse_ack_id("not base64!", "sub-1")


# -- matching -----------------------------------------------------------------------------------


def test_a_new_product_is_created_and_notified_once_however_often_its_event_comes(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    s1 = subscribe(service, FilterParam=S1_FILTER)
    s2 = subscribe(service, FilterParam="Collection/Name eq 'SENTINEL-2'")
    every = subscribe(service, SubscriptionEvent=["created", "modified", "deleted"])
    product = entry("S1A_IW_GRDH_1SDV_A.SAFE")
    catalog.upsert(product)
    for _ in range(3):  # at-least-once delivery of the same event
        service.on_event(cataloged(product))
    queued = {s: [(n.product_name, n.event) for n in service.store.pending(s, 10)] for s in (s1, s2, every)}
    assert queued == {s1: [(product.name, Event.CREATED)], s2: [], every: [(product.name, Event.CREATED)]}


def test_a_changed_product_is_modified_with_one_notification_per_change(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    only_created = subscribe(service)
    modified = subscribe(service, SubscriptionEvent=["modified"])
    product = entry("S1A_IW_GRDH_1SDV_B.SAFE")
    catalog.upsert(product)
    service.on_event(cataloged(product))
    for change in (1, 2):
        catalog.upsert(dataclasses.replace(product, content_length=100 + change,
                                           modification_time=T0 + timedelta(hours=change)))  # fmt: skip
        service.on_event(cataloged(product))
        service.on_event(cataloged(product))  # redelivered: still one per change
    assert [n.event for n in service.store.pending(only_created, 10)] == [Event.CREATED]
    assert [n.event for n in service.store.pending(modified, 10)] == [Event.MODIFIED, Event.MODIFIED]


def test_an_evicted_product_is_deleted_and_the_notification_carries_the_offline_entry(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    deleted = subscribe(service, SubscriptionEvent=["deleted"])
    product = entry("S1A_IW_GRDH_1SDV_C.SAFE")
    catalog.upsert(product)
    service.on_event(cataloged(product))
    catalog.upsert(dataclasses.replace(product, online=False, eviction_time=T0 + timedelta(days=30)))
    service.on_event(evicted(product, T0 + timedelta(days=30)))
    service.on_event(evicted(product, T0 + timedelta(days=30)))
    read = subscriptions_odata.SubscriptionsApi(service)
    client = api_client(read)
    answer = client.get(f"/odata/v1/Subscriptions({deleted})/Read?$top=5").get_json()
    assert [(n["SubscriptionEvent"], n["value"]["Online"]) for n in answer] == [("deleted", False)]


def test_a_product_not_in_the_catalog_notifies_nobody(service: SubscriptionService) -> None:
    subscription = subscribe(service)
    service.on_event(cataloged(entry("S1A_IW_GRDH_1SDV_GONE.SAFE")))
    assert service.store.pending(subscription, 10) == []


# -- push ---------------------------------------------------------------------------------------


def test_the_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    policy = PushPolicy(retry_base_s=10, retry_max_s=300)
    assert [policy.retry_delay(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert policy.retry_delay(10_000) == 300


def test_a_push_is_the_cdse_notification_with_basic_auth_and_a_sequence_header(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    push = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/hook", NotificationEpUsername="u",
                     NotificationEpPassword="secret")  # fmt: skip
    product = entry("S1A_IW_GRDH_1SDV_D.SAFE")
    catalog.upsert(product)
    assert service.on_event(cataloged(product))["pushed"] == 1
    (sent,) = endpoint_of(service).received
    assert sent["url"] == "http://127.0.0.1:9/hook" and sent["auth"] == ("u", "secret")
    assert sent["headers"][SEQUENCE_HEADER].isdigit() and sent["allow_redirects"] is False
    body = sent["json"]
    keys = ("@odata.context", "SubscriptionEvent", "ProductId", "ProductName", "SubscriptionId")
    assert {k: body[k] for k in keys} == {
        "@odata.context": "$metadata#Notification/$entity", "SubscriptionEvent": "created", "ProductId": product.id,
        "ProductName": product.name, "SubscriptionId": push,
    }  # fmt: skip
    assert body["NotificationDate"].endswith("Z") and body["value"]["Name"] == product.name
    assert "Attributes" in body["value"]
    assert service.store.pending(push, 10) == []


def test_a_failing_endpoint_is_retried_with_backoff_in_order_and_nothing_is_lost(
    service: SubscriptionService, catalog: CatalogStore, clock: Clock
) -> None:
    push = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/hook")
    endpoint = endpoint_of(service)
    endpoint.statuses = [503, requests.ConnectionError("refused"), 500]
    products = [entry(f"S1A_IW_GRDH_1SDV_E{i}.SAFE") for i in range(3)]
    for product in products:
        catalog.upsert(product)
        service.on_event(cataloged(product))
    # The first failed at once; the others wait behind it (no attempt while its retry is not due).
    assert endpoint.received == [] and len(service.store.pending(push, 10)) == 3
    shown = api_client(subscriptions_odata.SubscriptionsApi(service)).get(f"/odata/v1/Subscriptions({push})")
    assert shown.get_json()["@refsys.LastDeliveryError"] == "HTTP 503 from the NotificationEndpoint"
    assert shown.get_json()["CurrentQueueLength"] == 3
    assert service.on_tick()["pushed"] == 0  # not due yet
    clock.now += 10
    assert service.on_tick()["push-failures"] == 1  # connection refused; next wait 20 s
    clock.now += 19
    assert service.on_tick()["pushed"] == 0
    clock.now += 1
    assert service.on_tick()["push-failures"] == 1  # 500; next wait 40 s
    clock.now += 40
    assert service.on_tick()["pushed"] == 3
    assert [b["json"]["ProductName"] for b in endpoint.received] == [p.name for p in products]
    again = api_client(subscriptions_odata.SubscriptionsApi(service)).get(f"/odata/v1/Subscriptions({push})")
    assert again.get_json()["@refsys.LastDeliveryError"] is None and again.get_json()["CurrentQueueLength"] == 0


def test_a_slow_endpoint_holds_up_only_its_own_queue_and_a_drain_stops_at_its_budget(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    slow = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/slow")
    fast = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/fast")
    endpoint = endpoint_of(service)

    def post(url: str, **kwargs: Any) -> Any:
        if url.endswith("/slow") and service.post is post:
            time.sleep(1.5)  # longer than the budget below: the drain must not wait for it to begin the next
        return endpoint(url, **kwargs)

    service.post = post
    for i in range(3):  # queued for both, not pushed yet
        product = entry(f"S1A_IW_GRDH_1SDV_B{i}.SAFE")
        catalog.upsert(product)
        notify(cataloged(product), catalog, service.store)
    outcome = service.pusher().drain([slow, fast], budget_s=1.0)
    # The fast queue went whole beside the slow one, which sent only what it began within the budget.
    assert [b["url"] for b in endpoint.received].count("http://127.0.0.1:9/fast") == 3
    left = len(service.store.pending(slow, 10))
    assert outcome == {"pushed": 6 - left, "push-failures": 0} and left >= 1
    service.post = endpoint
    assert service.pusher().drain([slow])["pushed"] == left  # still due: the next drain sends it, in order
    names = [b["json"]["ProductName"] for b in endpoint.received if b["url"].endswith("/slow")]
    assert names == [f"S1A_IW_GRDH_1SDV_B{i}.SAFE" for i in range(3)]


def test_a_paused_push_subscription_gathers_notifications_and_delivers_them_on_resume(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    push = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/hook", Status="paused")
    client = api_client(subscriptions_odata.SubscriptionsApi(service))
    for i in range(2):
        product = entry(f"S1A_IW_GRDH_1SDV_P{i}.SAFE")
        catalog.upsert(product)
        service.on_event(cataloged(product))
    service.on_tick()
    assert endpoint_of(service).received == []
    resumed = client.patch(f"/odata/v1/Subscriptions({push})", json={"Status": "running"})
    assert resumed.status_code == 200 and resumed.get_json()["Status"] == "running"
    assert len(endpoint_of(service).received) == 2


def test_a_second_drain_does_not_push_a_queue_another_one_holds(service: SubscriptionService) -> None:
    push = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/hook")
    token = service.store.lease(push, 60)
    assert token is not None and service.store.lease(push, 60) is None
    service.store.release(push, token)
    assert service.store.lease(push, 60) is not None


# -- pull, replay, housekeeping -------------------------------------------------------------------


def test_pull_reads_the_oldest_first_and_an_ack_removes_it_and_all_before(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    pull = subscribe(service)
    client = api_client(subscriptions_odata.SubscriptionsApi(service))
    names = [f"S1A_IW_GRDH_1SDV_R{i}.SAFE" for i in range(4)]
    for name in names:
        catalog.upsert(entry(name))
        service.on_event(cataloged(entry(name)))
    first = client.get(f"/odata/v1/Subscriptions({pull})/Read").get_json()
    assert [n["ProductName"] for n in first] == names[:1]  # CDSE: $top defaults to 1
    read = client.get(f"/odata/v1/Subscriptions({pull})/Read?$top=3").get_json()
    assert [n["ProductName"] for n in read] == names[:3] and all(n["AckId"] for n in read)
    acked = client.post(f"/odata/v1/Subscriptions({pull})/Ack?$ackid={read[1]['AckId']}")
    assert acked.get_json() == {"@odata.context": "$metadata#Notification/$entity", "AckMessagesNum": 2,
                                "CurrentQueueLength": 2, "MaxQueueLength": 5}  # fmt: skip
    assert [n["ProductName"] for n in client.get(f"/odata/v1/Subscriptions({pull})/Read?$top=20").get_json()] == names[
        2:
    ]
    assert client.get(f"/odata/v1/Subscriptions({pull})/Read?$top=21").status_code == 400
    assert client.post(f"/odata/v1/Subscriptions({pull})/Ack?$ackid=bogus").status_code == 400
    entity = client.get(f"/odata/v1/Subscriptions({pull})").get_json()
    assert entity["AckMessagesNum"] == 2 and entity["LastNotificationDate"] is not None


def test_a_replay_from_a_sequence_or_a_date_delivers_again_in_order(
    service: SubscriptionService, catalog: CatalogStore, clock: Clock
) -> None:
    push = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/hook")
    client = api_client(subscriptions_odata.SubscriptionsApi(service))
    for i in range(3):
        catalog.upsert(entry(f"S1A_IW_GRDH_1SDV_Y{i}.SAFE"))
        service.on_event(cataloged(entry(f"S1A_IW_GRDH_1SDV_Y{i}.SAFE")))
        clock.now += 60
    endpoint = endpoint_of(service)
    sequences = [int(r["headers"][SEQUENCE_HEADER]) for r in endpoint.received]
    assert len(sequences) == 3 and sequences == sorted(sequences)
    replay = client.post(f"/odata/v1/Subscriptions({push})/Redeliver", json={"FromSequence": sequences[1]})
    assert replay.status_code == 200 and replay.get_json()["Redelivered"] == 2
    assert [int(r["headers"][SEQUENCE_HEADER]) for r in endpoint.received[3:]] == sequences[1:]
    since = datetime.fromtimestamp(clock.now - 120, UTC).isoformat()
    assert (
        client.post(f"/odata/v1/Subscriptions({push})/Redeliver", json={"FromDate": since}).get_json()["Redelivered"]
        == 2
    )
    assert client.post(f"/odata/v1/Subscriptions({push})/Redeliver", json={"From": 1}).status_code == 400


def test_an_overflowing_pull_queue_loses_its_oldest_and_old_done_notifications_are_forgotten(
    service: SubscriptionService, catalog: CatalogStore, clock: Clock
) -> None:
    pull = subscribe(service)
    names = [f"S1A_IW_GRDH_1SDV_Q{i}.SAFE" for i in range(8)]
    for name in names:
        catalog.upsert(entry(name))
        service.on_event(cataloged(entry(name)))
    assert service.on_tick()["dropped"] == 3  # MaxQueueLength 5
    assert [n.product_name for n in service.store.pending(pull, 10)] == names[3:]
    clock.now += 3601
    assert service.on_tick()["forgotten"] == 3


# -- the OData routes ---------------------------------------------------------------------------


def api_client(api: subscriptions_odata.SubscriptionsApi, access: AccessPolicy | None = None) -> Any:
    service = ODataService(api.service.catalog, lambda: None, access=access)
    app = flask.Flask(__name__)
    methods = ["GET", "POST", "PATCH", "DELETE"]

    def view(path: str = "") -> flask.Response:
        original = subscriptions_odata.subscriptions_api
        subscriptions_odata.subscriptions_api = lambda: api  # type: ignore[assignment]
        try:
            return service.handle(flask.request)
        finally:
            subscriptions_odata.subscriptions_api = original  # type: ignore[assignment]

    app.add_url_rule("/<path:path>", "odata", view, methods=methods)
    return app.test_client()


def test_create_answers_201_with_the_cdse_entity_and_never_the_credentials(service: SubscriptionService) -> None:
    client = api_client(subscriptions_odata.SubscriptionsApi(service))
    created = client.post("/odata/v1/Subscriptions", json={
        "FilterParam": S1_FILTER, "NotificationEndpoint": "http://127.0.0.1:9/hook",
        "NotificationEpUsername": "u", "NotificationEpPassword": "secret", "SubscriptionEvent": ["created"],
    })  # fmt: skip
    assert created.status_code == 201, created.text
    body = created.get_json()
    assert body["@odata.context"] == "$metadata#OData.CSC.Subscription"
    assert {"Id", "FilterParam", "StageOrder", "Priority", "Status", "NotificationEndpoint", "SubscriptionEvent",
            "SubmissionDate", "LastNotificationDate"} <= body.keys()  # fmt: skip
    assert (
        "secret" not in created.text and "NotificationEpPassword" not in body and "NotificationEpUsername" not in body
    )
    listed = client.get("/odata/v1/Subscriptions/Info").get_json()
    assert [s["Id"] for s in listed] == [body["Id"]] and "secret" not in str(listed)
    collection = client.get("/odata/v1/Subscriptions?$top=1").get_json()
    assert collection["value"][0]["Id"] == body["Id"]
    assert client.post("/odata/v1/Subscriptions", json={"FilterParam": "Name eq"}).status_code == 400
    assert client.post("/odata/v1/Subscriptions", data="{nope").status_code == 400
    service_document = client.get("/odata/v1").get_json()
    assert "Subscriptions" in [item["name"] for item in service_document["value"]]


def test_patch_cancelled_and_delete_remove_a_subscription(service: SubscriptionService) -> None:
    client = api_client(subscriptions_odata.SubscriptionsApi(service))
    first, second = subscribe(service), subscribe(service)
    assert client.patch(f"/odata/v1/Subscriptions({first})", json={"Status": "cancelled"}).status_code == 204
    assert client.delete(f"/odata/v1/Subscriptions('{second}')").status_code == 204
    assert client.get(f"/odata/v1/Subscriptions({first})").status_code == 404
    assert client.get(f"/odata/v1/Subscriptions({second})").status_code == 404
    assert client.put(f"/odata/v1/Subscriptions({second})").status_code in (404, 405)


ISSUER = "https://issuer.test/realms/refsys"


def test_with_oidc_a_user_sees_only_their_own_subscriptions_and_an_admin_sees_all(
    service: SubscriptionService,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    access = AccessPolicy(TokenVerifier(ISSUER, None, lambda _token: key.public_key()))
    client = api_client(subscriptions_odata.SubscriptionsApi(service), access)

    def headers(sub: str, *roles: str) -> dict[str, str]:
        claims = {"iss": ISSUER, "exp": int(time.time()) + 300, "sub": sub, "roles": list(roles)}
        return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="RS256")}

    assert client.post("/odata/v1/Subscriptions", json={}).status_code == 401
    alice = client.post("/odata/v1/Subscriptions", json={}, headers=headers("alice", "viewer")).get_json()["Id"]
    bob = client.post("/odata/v1/Subscriptions", json={}, headers=headers("bob", "viewer")).get_json()["Id"]
    assert service.store.get(alice).owner == "alice"  # type: ignore[union-attr]
    mine = client.get("/odata/v1/Subscriptions/Info", headers=headers("alice", "viewer")).get_json()
    assert [s["Id"] for s in mine] == [alice]
    assert client.get(f"/odata/v1/Subscriptions({bob})", headers=headers("alice", "viewer")).status_code == 404
    assert client.delete(f"/odata/v1/Subscriptions({bob})", headers=headers("alice", "viewer")).status_code == 404
    everyone = client.get("/odata/v1/Subscriptions/Info", headers=headers("root", "admin")).get_json()
    assert {s["Id"] for s in everyone} == {alice, bob}
    replay = client.post(f"/odata/v1/Subscriptions({bob})/Redeliver", json={"FromSequence": 1},
                         headers=headers("ops", "operator"))  # fmt: skip
    assert replay.status_code == 200
    # No one-per-user cap (CDSE allows one running subscription per user).
    more = [client.post("/odata/v1/Subscriptions", json={}, headers=headers("alice", "viewer")) for _ in range(12)]
    assert {r.status_code for r in more} == {201}


@pytest.mark.parametrize(
    "filter_param",
    [
        "Collection/Name eq 'SENTINEL-1'",
        "Collection/Name eq 'SENTINEL-1' and OData.CSC.Intersects(area=geography'SRID=4326;"
        "POLYGON((9 39,13 39,13 43,9 43,9 39))')",
        "Collection/Name eq 'Sentinel2' and contains(Name,'MSI')",
        "Collection/Name eq 'LANDSAT-8'",
        "Collection/Name eq 'SENTINEL-1' or Collection/Name eq 'SENTINEL-3'",
        "not (Collection/Name eq 'SENTINEL-1')",
        "Collection/Name ne 'SENTINEL-1' and ContentLength gt 10",
        "",
    ],
)
def test_the_collection_prefilter_never_changes_what_matches(filter_param: str) -> None:
    from shared.catalog.filters import matches
    from shared.subscriptions.matching import Occurrence, matching
    from shared.subscriptions.model import Subscription

    subscription = Subscription("s", "", filter_param, (Event.CREATED,), Status.RUNNING, False, 1, None, None, None,
                                "", None, 0, None, "")  # fmt: skip
    for name in ("S1A_IW_GRDH_1SDV_F.SAFE", "S2A_MSIL1C_F.SAFE", "S3A_OL_1_EFR____F.SEN3"):
        product = entry(name)
        found = matching(Occurrence(product, Event.CREATED, ""), [subscription])
        assert bool(found) == matches(subscription.where(), product), (filter_param, name)


def test_where_private_endpoints_are_refused_a_loopback_endpoint_is_refused_and_never_pushed(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    from shared.subscriptions.delivery import not_public

    assert not_public("http://127.0.0.1:9/hook") and not_public("http://169.254.169.254/latest")
    assert not_public("http://[::1]/hook") and not_public("http://10.1.2.3/") and not_public("http://192.168.0.9/")
    assert not_public("http://8.8.8.8/hook") is None
    push = subscribe(service, NotificationEndpoint="http://127.0.0.1:9/hook")  # accepted while allowed
    service.policy = dataclasses.replace(service.policy, private_endpoints=False)
    client = api_client(subscriptions_odata.SubscriptionsApi(service))
    refused = client.post("/odata/v1/Subscriptions", json={"NotificationEndpoint": "http://127.0.0.1:9/hook"})
    assert refused.status_code == 400 and "not a public address" in refused.get_json()["error"]["message"]
    product = entry("S1A_IW_GRDH_1SDV_PRIV.SAFE")
    catalog.upsert(product)
    service.on_event(cataloged(product))
    assert endpoint_of(service).received == []
    assert "not a public address" in str(client.get(f"/odata/v1/Subscriptions({push})").get_json())


def test_a_pushed_product_carries_its_assets_with_links_at_the_root_the_subscription_was_made_at(
    service: SubscriptionService, catalog: CatalogStore
) -> None:
    client = api_client(subscriptions_odata.SubscriptionsApi(service))
    created = client.post("/odata/v1/Subscriptions", json={"NotificationEndpoint": "http://127.0.0.1:9/hook"})
    assert created.status_code == 201
    product = entry("S1A_IW_GRDH_1SDV_QL.SAFE", quicklooks=("S1A_IW_GRDH_1SDV_QL.SAFE/preview/quick-look.png",))
    catalog.upsert(product)
    service.on_event(cataloged(product))
    (sent,) = endpoint_of(service).received
    (asset,) = sent["json"]["value"]["Assets"]
    assert asset["Type"] == "QUICKLOOK" and asset["DownloadLink"].startswith("http://localhost/odata/v1/Assets(")
