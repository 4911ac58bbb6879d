"""The subscriptions store on both catalog backends (SQLite file, PostgreSQL): the outbox's uniqueness under
concurrent redeliveries, order, acknowledgement, replay, trimming, and the push lease across processes' stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.subscriptions.model import Endpoint, Event, Status, odata_time, parse_create
from shared.subscriptions.store import Match, SubscriptionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(catalog_url: str, clock: Clock) -> Iterator[SubscriptionStore]:
    opened = SubscriptionStore(catalog_url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def matches(subscription_id: str, count: int, event: Event = Event.CREATED) -> list[Match]:
    return [Match(subscription_id, f"id-{i}", f"PRODUCT_{i:03d}", event, "") for i in range(count)]


def test_subscriptions_are_kept_with_their_owner_and_changed_in_place(store: SubscriptionStore) -> None:
    body = {"FilterParam": "Collection/Name eq 'SENTINEL-1'", "SubscriptionEvent": ["created", "deleted"],
            "NotificationEndpoint": "http://127.0.0.1:9/", "NotificationEpUsername": "u",
            "NotificationEpPassword": "p", "Priority": 7, "StageOrder": True}  # fmt: skip
    alice = store.create(parse_create(body), "alice")
    bob = store.create(parse_create({}), "bob")
    again = store.get(alice.id)
    assert again == alice and again.events == (Event.CREATED, Event.DELETED) and again.priority == 7
    assert [s.id for s in store.list_for("alice", 10, 0)] == [alice.id]
    assert {s.id for s in store.list_for(None, 10, 0)} == {alice.id, bob.id}
    store.update(alice.id, Status.PAUSED, Endpoint("https://elsewhere/", None, None))
    changed = store.get(alice.id)
    assert changed is not None and changed.status is Status.PAUSED and changed.endpoint == "https://elsewhere/"
    assert changed.username is None and changed.password is None
    store.enqueue(matches(alice.id, 3))
    assert store.delete(alice.id) and store.get(alice.id) is None and store.pending(alice.id, 10) == []
    assert not store.delete(alice.id)


def test_concurrent_redeliveries_of_the_same_events_queue_each_notification_once(catalog_url: str) -> None:
    first = SubscriptionStore(catalog_url)
    subscription = first.create(parse_create({}), "")
    queued: list[list[str]] = []

    def deliver() -> None:
        store = SubscriptionStore(catalog_url)  # a store (and connection) per replica
        queued.append(store.enqueue(matches(subscription.id, 50)))
        store.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(q) for q in queued) == 50
    pending = first.pending(subscription.id, 1000)
    assert len(pending) == 50 and [n.seq for n in pending] == sorted(n.seq for n in pending)
    assert first.queue_lengths([subscription.id]) == {subscription.id: 50}
    first.close()


def test_a_modification_is_a_notification_of_its_own_version(store: SubscriptionStore) -> None:
    subscription = store.create(parse_create({"SubscriptionEvent": ["modified"]}), "")
    one = Match(subscription.id, "id-1", "P", Event.MODIFIED, "2024-05-01T10:00:00.000000Z")
    two = Match(subscription.id, "id-1", "P", Event.MODIFIED, "2024-05-01T11:00:00.000000Z")
    assert store.enqueue([one, one, two]) == [subscription.id, subscription.id]


def test_ack_replay_trim_and_forget(store: SubscriptionStore, clock: Clock) -> None:
    subscription = store.create(parse_create({}), "")
    store.enqueue(matches(subscription.id, 4))
    clock.now += 600
    store.enqueue(matches(subscription.id, 8)[4:])
    seqs = [n.seq for n in store.pending(subscription.id, 100)]
    assert store.acknowledge(subscription.id, seqs[5]) == 6
    assert store.acknowledge(subscription.id, seqs[5]) == 0
    assert [n.seq for n in store.pending(subscription.id, 100)] == seqs[6:]
    assert store.get(subscription.id).ack_messages_num == 6  # type: ignore[union-attr]
    # From a date: the four queued 600 s later, of which two were acknowledged.
    since = odata_time(datetime.fromtimestamp(clock.now, UTC))
    assert store.replay(subscription.id, from_date=since) == 2
    assert store.replay(subscription.id, from_seq=seqs[0]) == 4
    assert [n.seq for n in store.pending(subscription.id, 100)] == seqs
    assert store.trim_queues(5) == 3
    assert [n.seq for n in store.pending(subscription.id, 100)] == seqs[3:]
    clock.now += 100
    assert store.forget_done(50) == 3 and store.forget_done(50) == 0


def test_one_store_at_a_time_holds_a_subscriptions_push_lease(catalog_url: str, clock: Clock) -> None:
    one, other = SubscriptionStore(catalog_url, clock=clock), SubscriptionStore(catalog_url, clock=clock)
    subscription = one.create(parse_create({"NotificationEndpoint": "http://127.0.0.1:9/"}), "")
    token = one.lease(subscription.id, 60)
    assert token is not None and other.lease(subscription.id, 60) is None
    clock.now += 61  # a holder that died: its lease runs out
    taken = other.lease(subscription.id, 60)
    assert taken is not None and not one.renew(subscription.id, token, 60)
    other.release(subscription.id, taken)
    assert one.lease(subscription.id, 60) is not None
    one.close()
    other.close()


def test_due_pushes_are_running_push_subscriptions_whose_head_is_due(store: SubscriptionStore, clock: Clock) -> None:
    push = store.create(parse_create({"NotificationEndpoint": "http://127.0.0.1:9/"}), "")
    paused = store.create(parse_create({"NotificationEndpoint": "http://127.0.0.1:9/", "Status": "paused"}), "")
    pull = store.create(parse_create({}), "")
    for subscription in (push, paused, pull):
        store.enqueue(matches(subscription.id, 2))
    assert store.with_due_pushes() == [push.id]
    head = store.pending(push.id, 1)[0]
    store.failed(head, "HTTP 503", clock.now + 30)
    assert store.with_due_pushes() == []
    clock.now += 30
    assert store.with_due_pushes() == [push.id]
