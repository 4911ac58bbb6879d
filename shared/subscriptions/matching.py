"""Which subscriptions a catalog event concerns, queued in the outbox.

* ``product.cataloged`` is **created** when the entry's ModificationDate equals its PublicationDate (the
  catalog writes both at a product's first publication and keeps the publication time at every later upsert),
  and **modified** when it is later (the product was cataloged again with a change; an upsert that changes
  nothing writes nothing, so no ``modified``). The entry is read from the catalog, not taken from the event: a
  redelivered event of the first publication, read after a change, is one ``modified`` with the same version
  as the change's own event, so still one notification.
* ``product.evicted`` is **deleted**: the stored copy is gone; the entry stays listed with ``Online`` false and
  is what the notification carries (CDSE's ``deleted`` is about products leaving the catalog, which here none
  does: eviction is the nearest thing a subscriber must hear about).

Every subscription's filter is evaluated on the entry with ``filters.matches`` (the semantics the SQL of
both backends reproduces), its parse cached by filter text. One prefilter: a filter that requires a collection
(``Collection/Name eq ...`` alone or ANDed at its top, as CDSE's examples all do) is skipped for a product of
another mission without evaluating the rest (its Intersects is most of the cost). Paused subscriptions match
too: their notifications wait for the resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from events import ProductCataloged, ProductEvicted
from shared.catalog.filters import And, Compare, Prop, matches, mission_of_collection
from shared.catalog.model import CatalogEntry, format_utc
from shared.catalog.store import CatalogStore
from shared.subscriptions.model import Event, Subscription, parsed_filter
from shared.subscriptions.store import Match, SubscriptionStore


@dataclass(frozen=True)
class Occurrence:
    """What happened to a product, as subscriptions name it."""

    entry: CatalogEntry
    event: Event
    version: str  # with the product and event, identifies the notification (dedup key)


def occurrence(event: ProductCataloged | ProductEvicted, catalog: CatalogStore) -> Occurrence | None:
    """None when the product is not in the catalog (nothing to tell)."""
    entry = catalog.get(event.product.product_id)
    if entry is None:
        return None
    if isinstance(event, ProductEvicted):
        return Occurrence(entry, Event.DELETED, format_utc(event.eviction_time))
    if entry.modification_time > entry.publication_time:
        return Occurrence(entry, Event.MODIFIED, format_utc(entry.modification_time))
    return Occurrence(entry, Event.CREATED, "")


_ANY = "*"


@lru_cache(maxsize=16384)
def required_mission(filter_param: str) -> str | None:
    """The mission a filter requires (None: a collection no product has), or ``_ANY``."""
    where = parsed_filter(filter_param)
    for item in where.items if isinstance(where, And) else (where,):
        if isinstance(item, Compare) and item.prop is Prop.COLLECTION and item.op == "eq":
            return mission_of_collection(str(item.value))
    return _ANY


def matching(what: Occurrence, subscriptions: list[Subscription]) -> list[Match]:
    found: list[Match] = []
    for subscription in subscriptions:
        if what.event not in subscription.events:
            continue
        mission = required_mission(subscription.filter_param)
        if mission != _ANY and mission != what.entry.mission:
            continue
        if matches(subscription.where(), what.entry):
            found.append(Match(subscription.id, what.entry.id, what.entry.name, what.event, what.version))
    return found


def notify(
    event: ProductCataloged | ProductEvicted, catalog: CatalogStore, store: SubscriptionStore
) -> list[Subscription]:
    """Queue the notifications of one event; the subscriptions that got a new one."""
    what = occurrence(event, catalog)
    if what is None:
        return []
    live = {subscription.id: subscription for subscription in store.live()}
    return [live[subscription_id] for subscription_id in store.enqueue(matching(what, list(live.values())))]
