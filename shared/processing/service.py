"""The preparation step of this process, built once from the settings (like :mod:`shared.ports`)."""

from __future__ import annotations

from functools import lru_cache

from events import ProductCataloged, make_event
from events.naming import function_source
from events.processing import JobReady
from shared import ports
from shared.processing.config import processing_config
from shared.processing.jobs import JobStore
from shared.processing.preparation import Preparation
from shared.processing.queries import CatalogSelection
from shared.runtime import consequence, reprocessing
from shared.settings import get_settings


@lru_cache(maxsize=1)
def preparation() -> Preparation:
    settings = get_settings()
    return Preparation(
        processing_config(settings.processing_config_dir),
        JobStore(settings.catalog_url),
        CatalogSelection(settings.catalog_url),
    )


def on_cataloged(event: ProductCataloged) -> JobReady | None:
    """The jobs a cataloged product completes: the first is the reply, the others go to the sink.

    A product re-announced by a replay or a reprocessing makes jobs of that reprocessing, beside the first ones.
    """
    ready = preparation().on_cataloged(event, event.event_id(), generation=reprocessing())
    for extra in ready[1:]:
        ports.sink().publish(consequence(extra, "prepare"))
    return ready[0] if ready else None


def on_timer() -> int:
    """Jobs whose wait is over (timeouts), posted to the sink; how many."""
    ready = preparation().on_timer()
    for job in ready:
        ports.sink().publish(make_event(job, source=function_source("prepare")))
    return len(ready)
