"""The subscriptions service: matching on catalog events, push drains, and the tick's housekeeping,
built from the settings and the catalog port."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import requests

from events import ProductCataloged, ProductEvicted
from shared.catalog.model import CatalogEntry
from shared.catalog.odata.entities import product_json
from shared.catalog.odata.options import EXPANDABLE
from shared.catalog.store import CatalogStore
from shared.subscriptions.delivery import Post, Pusher, PushPolicy
from shared.subscriptions.matching import notify
from shared.subscriptions.model import Status
from shared.subscriptions.store import SubscriptionStore

# Pushing stops after this long in one delivery or tick (their timeouts are 60 s); the next tick goes on.
PUSH_BUDGET_S = 30.0
# The product in a notification: as CDSE sends it, with its attributes and (where served) assets expanded.
_EXPAND = tuple(name for name in ("Attributes", "Assets") if name in EXPANDABLE)
_PRODUCT_CONTEXT = "$metadata#Products(" + ",".join(f"{name}()" for name in _EXPAND) + ")/$entity"


def render_product(entry: CatalogEntry, root: str) -> dict[str, Any]:
    return {"@odata.context": _PRODUCT_CONTEXT, **product_json(entry, expand=_EXPAND, root=root)}


@dataclass
class SubscriptionService:
    store: SubscriptionStore
    catalog: Callable[[], CatalogStore]
    policy: PushPolicy = field(default_factory=PushPolicy)
    max_queue_length: int = 100_000
    keep_s: float = 3 * 86400.0
    post: Post = requests.post

    def pusher(self) -> Pusher:
        return Pusher(self.store, lambda product: self.catalog().get(product), render_product, self.policy, self.post)

    def on_event(self, event: ProductCataloged | ProductEvicted) -> dict[str, int]:
        """Queue what the event means to each subscription, then push the new ones at once."""
        queued = notify(event, self.catalog(), self.store)
        pushed = [s.id for s in queued if s.push and s.status is Status.RUNNING]  # PULL ones wait to be read
        # Within the Trigger's 60 s delivery timeout, whatever the endpoints do; the tick sends what is left.
        outcome = self.pusher().drain(pushed, budget_s=PUSH_BUDGET_S) if pushed else {}
        return {"queued": len(queued), **outcome}

    def on_tick(self) -> dict[str, int]:
        """Push what is due (retries, resumed subscriptions), trim overflowing PULL queues, forget old done ones."""
        outcome = self.pusher().drain(budget_s=PUSH_BUDGET_S)
        outcome["dropped"] = self.store.trim_queues(self.max_queue_length)
        outcome["forgotten"] = self.store.forget_done(self.keep_s)
        return outcome


@lru_cache(maxsize=1)
def subscription_service() -> SubscriptionService:
    """The service of this process, from its settings."""
    from shared import ports
    from shared.settings import get_settings

    settings = get_settings()
    return SubscriptionService(
        store=SubscriptionStore(settings.catalog_url),
        catalog=ports.catalog,
        policy=PushPolicy(
            timeout_s=settings.subscriptions_push_timeout_s,
            retry_base_s=settings.subscriptions_retry_base_s,
            retry_max_s=settings.subscriptions_retry_max_s,
            private_endpoints=settings.subscriptions_private_endpoints,
        ),
        max_queue_length=settings.subscriptions_max_queue_length,
        keep_s=settings.subscriptions_keep_days * 86400.0,
    )
