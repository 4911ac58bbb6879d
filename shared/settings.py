"""The one settings object of every function and command, read from the environment (``REFSYS_*``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFSYS_", extra="ignore")

    # Object storage (any S3 API).
    s3_endpoint_url: str | None = Field(None, description="None means AWS itself")
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    inbox_bucket: str = "rs-inbox"
    quarantine_bucket: str = "rs-quarantine"
    deadletter_bucket: str = "rs-deadletter"
    bucket_prefix: str = Field("rs-", description="Family buckets are <prefix><mission>-<family>")
    incomplete_timeout_s: float = Field(3600.0, description="A product still incomplete this long is quarantined")
    scan_grace_s: float = Field(30.0, description="The inbox scan leaves objects younger than this to notifications")
    # Ingestion.
    ingest_lease_s: float = Field(
        10.0, gt=0, description="A claim on a product not renewed this long expires (keep it below the retry window)"
    )
    ingest_parallel_requests: int = Field(8, ge=1, le=16, description="Object-store requests in flight per process")
    trust_etag_md5: bool = Field(
        True, description="A single-part ETag is the MD5 of the bytes (false for stores encrypting with SSE-KMS/C)"
    )
    unlisted_files_warn_families: list[str] = Field(
        default_factory=list,
        description='Families whose files not in the manifest are moved with a warning (JSON: ["S2_L0"]), not rejected',
    )

    # Catalog database: sqlite:///path.db or postgresql://...
    catalog_url: str = "sqlite:///.refsys/catalog.db"

    # Where a function posts events it produces besides its reply; Knative injects K_SINK.
    sink: str | None = Field(None, validation_alias=AliasChoices("K_SINK", "REFSYS_SINK"))

    # Access control of the HTTP APIs (catalog queries, OData, operations): with an issuer set, every request
    # needs a valid bearer token from it with the role the endpoint asks for (shared/security/access.py).
    # The REFSYS_ODATA_OIDC_* names of the first version still work.
    oidc_issuer: str | None = Field(
        None,
        validation_alias=AliasChoices("oidc_issuer", "REFSYS_OIDC_ISSUER", "REFSYS_ODATA_OIDC_ISSUER"),
        description="e.g. https://keycloak.example/realms/refsys; unset: open",
    )
    oidc_audience: str | None = Field(
        None,
        validation_alias=AliasChoices("oidc_audience", "REFSYS_OIDC_AUDIENCE", "REFSYS_ODATA_OIDC_AUDIENCE"),
        description="the aud claim tokens must carry (client id)",
    )
    oidc_jwks_url: str | None = Field(
        None,
        validation_alias=AliasChoices("oidc_jwks_url", "REFSYS_OIDC_JWKS_URL", "REFSYS_ODATA_OIDC_JWKS_URL"),
        description="default: jwks_uri of the issuer's discovery document",
    )
    # Who may send events to the functions (shared/security/senders.py): the platform's shared secret (the
    # embedded platform makes one), or a JWT of the cluster's OIDC issuer (Knative's authentication-oidc).
    event_secret: str | None = Field(None, description="Authorization: Bearer <this> of the broker, timers, webhook")
    event_oidc_issuer: str | None = Field(None, description="the issuer of Knative's sender tokens (the cluster's)")
    event_oidc_audience: str | None = Field(None, description="the audience senders ask tokens for (the Trigger's)")
    event_oidc_jwks_url: str | None = Field(None, description="default: jwks_uri of the issuer's discovery document")
    # The reference's prip-frontend.download-url-expiration-time-in-seconds.
    odata_download_url_expiry_seconds: int = Field(600, gt=0)
    # STAC API (functions/stac): its item assets download through the OData API at this URL.
    stac_odata_url: str | None = Field(None, description="e.g. https://host/odata/v1; default: /odata/v1 beside /stac")

    # Processing: a folder with processors.yaml and tasktables/ (default: the set shipped in the package).
    processing_config_dir: str | None = None
    # Processing runs: where jobs run (local: a subprocess of the launch function; kubernetes: a batch/v1 Job).
    runner: str = Field("local", pattern="^(local|kubernetes)$")
    jobs_namespace: str | None = Field(None, description="Namespace of the Jobs (default: the launch pod's own)")
    job_service_account: str = Field("refsys-job", description="ServiceAccount of the Job pods (no API rights)")
    job_backoff_limit: int = Field(0, ge=0, description="Pod retries of a Job (a processor's failure is not transient)")
    job_ttl_s: int = Field(86400, ge=0, description="A finished Job is deleted this long after it ended")
    jobs_bucket: str = Field("rs-jobs", description="Run outcomes (<run id>/outcome.json), the wrapper's last word")
    failed_workdir_bucket: str = Field("rs-failed-workdir", description="Working directories of failed runs")
    workdir_root: str | None = Field(
        None, description="Where the wrapper puts working directories (default: the job's)"
    )
    task_command: str | None = Field(
        None, description="Command a task binary that is not installed is run with, e.g. refsys-ipf-simulator"
    )
    transfer_concurrency: int = Field(8, ge=1, le=64, description="Objects moved at once by the wrapper")

    # Operations: the event archive replays read from, and the operators' HTTP API.
    event_archive_url: str | None = Field(
        None, description="Database of the event archive (default: catalog_url); the embedded platform: its broker's"
    )
    archive_retention_days: float = Field(30.0, gt=0, description="Archived events older than this are deleted")
    replay_rate: float = Field(50.0, gt=0, description="Events per second a replay publishes at most")
    operator_role: str = Field(
        "operator", description="Name of the operator role in the issuer's tokens (see shared/security/access.py)"
    )
    deadletter_rules_file: str | None = Field(
        None, description="Restart rules of the dead letters (YAML); default: shared/operations/restart_rules.yaml"
    )

    # Data lifecycle (shared/lifecycle): retention rules and the lifecycle function's eviction sweep.
    retention_rules_file: str | None = Field(
        None, description="Retention rules (YAML) replacing the shipped shared/lifecycle/retention.yaml"
    )
    lifecycle_max_evictions: int = Field(
        500, ge=1, description="Products one sweep evicts at most; the rest go at the next tick"
    )

    # Subscriptions (shared/subscriptions): push delivery and the PULL queues.
    subscriptions_push_timeout_s: float = Field(10.0, gt=0, description="Wait for a NotificationEndpoint's answer")
    subscriptions_retry_base_s: float = Field(10.0, gt=0, description="First wait after a failed push; doubles")
    subscriptions_retry_max_s: float = Field(3600.0, gt=0, description="Longest wait between push attempts")
    subscriptions_max_queue_length: int = Field(
        100_000, ge=1, description="A PULL queue's MaxQueueLength (CDSE's); the oldest go beyond it"
    )
    subscriptions_keep_days: float = Field(
        3.0, gt=0, description="Delivered/acknowledged notifications kept this long for replays"
    )
    subscriptions_private_endpoints: bool = Field(
        True, description="Allow NotificationEndpoints on loopback/private addresses (false where users are untrusted)"
    )

    log_level: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
