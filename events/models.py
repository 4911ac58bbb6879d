"""One pydantic model per CloudEvent type: the ``data`` of the event, and what goes on its envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events import naming


class EventData(BaseModel):
    """Base of every event payload. Subclasses set ``TYPE`` and say how they are identified and routed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]

    def event_id(self) -> str:
        raise NotImplementedError

    def subject(self) -> str | None:
        return None

    def routing(self) -> dict[str, str]:
        """Extension attributes put on the envelope for Trigger filters."""
        return {}


class ObjectCreated(EventData):
    """An object was created in a bucket (from a store notification or an inbox scan)."""

    TYPE: ClassVar[str] = naming.event_type("storage", "object", "created")

    store: str = Field(description="Which store told us: seaweedfs, aws, minio, ceph, scan")
    bucket: str
    key: str = Field(description="Object key, URL-decoded")
    size: int = Field(ge=0)
    etag: str | None = None
    sequencer: str | None = Field(None, description="S3 per-key ordering token, when the store sends one")
    event_time: AwareDatetime

    def event_id(self) -> str:
        # Same object version -> same id. The time is part of it: the same bytes put again (a product
        # released from quarantine, uploaded twice) are a new arrival that must be looked at again.
        when = self.event_time.astimezone(UTC).replace(microsecond=0).isoformat()
        return naming.derived_id(self.bucket, self.key, self.etag or "", self.sequencer or "", self.size, when)

    def subject(self) -> str:
        return self.key

    def routing(self) -> dict[str, str]:
        return {naming.BUCKET: self.bucket}


class ProductIdentity(BaseModel):
    """What a product is, from its name: shared by every product event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: str = Field(description="Deterministic id (UUID v5 of the name)")
    name: str
    mission: str
    satellite: str | None
    product_type: str
    level: str
    family: str


class ProductEvent(EventData):
    product: ProductIdentity

    def subject(self) -> str:
        return self.product.name

    def routing(self) -> dict[str, str]:
        p = self.product
        routing = {
            naming.MISSION: p.mission,
            naming.PRODUCT_TYPE: p.product_type,
            naming.PRODUCT_FAMILY: p.family,
            naming.PRODUCT_LEVEL: p.level,
        }
        if p.satellite:
            routing[naming.SATELLITE] = p.satellite
        return routing


class ProductIngested(ProductEvent):
    """A complete, verified product now lies in its family bucket."""

    TYPE: ClassVar[str] = naming.event_type("product", "ingested")

    bucket: str
    key: str = Field(description="Object key, or key prefix ending with '/' for a directory product")
    content_length: int = Field(ge=0)
    checksum: str | None = Field(None, description="MD5 hex of the delivered object or of the manifest")
    content_type: str
    manifest_key: str | None = Field(None, description="Key of the manifest inside the bucket, if any")
    inbox_time: AwareDatetime | None = None
    ingestion_time: AwareDatetime

    def event_id(self) -> str:
        return naming.derived_id("ingested", self.product.product_id, self.checksum or "")


class RejectionReason(StrEnum):
    UNRECOGNISED = "unrecognised"
    CORRUPT_MANIFEST = "corrupt-manifest"
    CHECKSUM_MISMATCH = "checksum-mismatch"
    INCOMPLETE = "incomplete"
    CONFLICT = "conflict"
    UNLISTED_FILES = "unlisted-files"
    UNSUPPORTED_CHECKSUM = "unsupported-checksum"
    METADATA_UNREADABLE = "metadata-unreadable"


class ProductRejected(EventData):
    """A delivery was refused and quarantined; ``reason`` says why, ``detail`` in words."""

    TYPE: ClassVar[str] = naming.event_type("product", "rejected")

    name: str
    reason: RejectionReason
    detail: str
    quarantine_bucket: str
    quarantine_key: str
    rejected_time: AwareDatetime
    mission: str | None = None

    def event_id(self) -> str:
        return naming.derived_id("rejected", self.name, self.reason, self.quarantine_key)

    def subject(self) -> str:
        return self.name

    def routing(self) -> dict[str, str]:
        return {naming.MISSION: self.mission} if self.mission else {}


class ProductCataloged(ProductEvent):
    """A product is in the catalog and can be found and downloaded."""

    TYPE: ClassVar[str] = naming.event_type("product", "cataloged")

    bucket: str
    key: str
    content_length: int = Field(ge=0)
    validity_start: datetime | None
    validity_stop: datetime | None
    publication_time: AwareDatetime

    def event_id(self) -> str:
        return naming.derived_id("cataloged", self.product.product_id, self.bucket, self.key, self.content_length)


class ProductEvicted(ProductEvent):
    """A product's stored copy was removed by its retention rule: it stays listed, ``Online`` false."""

    TYPE: ClassVar[str] = naming.event_type("product", "evicted")

    bucket: str
    key: str
    eviction_time: AwareDatetime = Field(
        description="The product's EvictionDate: when its rule made it due, or when an operator evicted it"
    )
    rule: str = Field(description="The retention rule that made it due, or 'operator' for a manual eviction")

    def event_id(self) -> str:
        # The stored EvictionDate, not the clock: a retried eviction announces the same event.
        return naming.derived_id("evicted", self.product.product_id, self.bucket, self.key, self.eviction_time)


from events.processing import JobCompleted, JobFailed, JobReady  # noqa: E402  (processing events build on EventData above)

# Every type the system emits or consumes; operations events join here.
EVENT_MODELS: dict[str, type[EventData]] = {
    model.TYPE: model
    for model in (
        ObjectCreated,
        ProductIngested,
        ProductRejected,
        ProductCataloged,
        ProductEvicted,
        JobReady,
        JobCompleted,
        JobFailed,
    )
}
