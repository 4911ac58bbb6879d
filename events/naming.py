"""How events are named: `type`, `source`, `id` and the routing extension attributes.

- ``type`` is reverse-DNS and versioned: ``org.refsys.<noun>[.<noun>].<verb>.v<N>``, e.g.
  ``org.refsys.product.ingested.v1``. A breaking change of a payload is a new version, published
  beside the old one until every consumer moved.
- ``source`` is a URI-reference naming the producer: ``/refsys/functions/<function>`` for pipeline
  steps, ``/refsys/storage/<store>/<bucket>`` for object-store notifications.
- ``id`` is derived from what the event says (never random), so a redelivered or replayed event
  carries the same (source, id) and consumers can recognise it.
- Routing facts travel as extension attributes (1-20 lowercase alphanumerics, the CloudEvents rule)
  so Knative Triggers filter on them without reading ``data``.
"""

from __future__ import annotations

import hashlib

TYPE_PREFIX = "org.refsys"


def event_type(*words: str, version: int = 1) -> str:
    """``event_type("product", "ingested")`` -> ``org.refsys.product.ingested.v1``."""
    return ".".join((TYPE_PREFIX, *words, f"v{version}"))


def function_source(function: str) -> str:
    return f"/refsys/functions/{function}"


def storage_source(store: str, bucket: str) -> str:
    return f"/refsys/storage/{store}/{bucket}"


def derived_id(*parts: object) -> str:
    """A stable event id from the facts that identify the event."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


# Routing extension attributes (Trigger filters use these names).
MISSION = "mission"  # S1 | S2 | S3
SATELLITE = "satellite"  # A..D
PRODUCT_TYPE = "producttype"  # ESA product type code, e.g. IW_GRDH_1S
PRODUCT_FAMILY = "productfamily"  # reference family, e.g. L1_SLICE
PRODUCT_LEVEL = "productlevel"  # L0 | L1 | L2 | AUX ...
BUCKET = "bucket"  # storage events: the bucket the object is in
PROCESSOR = "processor"  # processing events: the configured processor (processors.yaml name)
REPLAY = "replay"  # "true" on an event re-sent on purpose, to do the work again
REPLAY_OF = "replayof"  # on a replayed event: the id of the archived event it re-sends
REPROCESSING = "reprocessing"  # the replay or reprocessing an event (and all it causes) belongs to

ROUTING_EXTENSIONS = (MISSION, SATELLITE, PRODUCT_TYPE, PRODUCT_FAMILY, PRODUCT_LEVEL, BUCKET, PROCESSOR, REPLAY)
