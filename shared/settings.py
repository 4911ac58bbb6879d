"""The one settings object of every function and command, read from the environment (``REFSYS_*``).

Declared in pydantic's words (``Field``, ``AliasChoices``: recorded here) and validated by pydantic, whose import is
left out of a function's start when no value needs it: odata, stac and web import nothing else of pydantic (60-70 ms
of their cold start, docs/performance.md). A value pydantic would keep as it is (a string for a string, plain digits
in bounds for a number, a word pydantic reads as a bool, a list of strings) is taken as it is; any other, and any out of
its bounds, goes through the pydantic model built from the same declarations (:func:`pydantic_model`), which
converts it or raises its ``ValidationError`` word for word. The environment is read as pydantic-settings read it:
``REFSYS_<field>`` or a field's aliases (without the prefix), names in any case, lists as JSON, arguments first.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

ENV_PREFIX = "REFSYS_"


class SettingsError(ValueError):
    """An environment variable that cannot be read as its field's type (a list that is not JSON)."""


class AliasChoices:
    """pydantic's ``AliasChoices``, recorded: the names a setting is given by, the first preferred."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices


@dataclass(frozen=True)
class Declared:
    """A setting as declared: ``pydantic.Field``'s arguments."""

    default: tuple[Any, ...]
    arguments: dict[str, Any]


def Field(*default: Any, **arguments: Any) -> Any:
    """pydantic's ``Field``, recorded (its arguments are given to it as they are when the model is built)."""
    return Declared(default, arguments)


class Settings:
    """Every setting, from the arguments (by name, or by alias for a field that has aliases) and the environment."""

    def __init__(self, **values: Any) -> None:
        given = {**_from_environment(), **_by_preferred_key(values)}
        taken = {name: _taken(name, given) for name in DECLARED}
        if any(value is _PYDANTIC for value in taken.values()):
            taken = dict(pydantic_model()(**given))  # pydantic's conversion, or its error
        vars(self).update(taken)

    def model_dump(self, *, exclude: set[str] | None = None) -> dict[str, Any]:
        """The values by field name (lists copied), as pydantic's ``model_dump``."""
        return {name: copy.copy(value) for name, value in vars(self).items() if name not in (exclude or set())}

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Settings:
        """A shallow copy with ``update``'s values (not validated), as pydantic's ``model_copy``."""
        copied = copy.copy(self)
        vars(copied).update(update or {})
        return copied

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in vars(self).items())})"

    # Object storage (any S3 API).
    s3_endpoint_url: str | None = Field(None, description="None means AWS itself")
    s3_access_key: str | None = Field(None, description="Access key of the S3 API (a secret: refsys-secrets)")
    s3_secret_key: str | None = Field(None, description="Secret key of the S3 API (a secret: refsys-secrets)")
    s3_region: str = Field("us-east-1", description="Region of the S3 API (signatures need one)")
    inbox_bucket: str = Field("rs-inbox", description="Where products are delivered (the ingest Trigger names it too)")
    quarantine_bucket: str = Field("rs-quarantine", description="Rejected deliveries, each with its reason")
    deadletter_bucket: str = Field("rs-deadletter", description="Events no function could handle, to restart")
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

    # Catalog database: one for every function (sqlite:///path.db; postgresql://... on a cluster).
    catalog_url: str = Field(
        "sqlite:///.refsys/catalog.db", description="One database for every function; PostgreSQL + PostGIS on a cluster"
    )
    # Catalog memory: a function process (one app-server worker) keeps at most this many catalog connections,
    # each with its SQLite page cache; together they bound its memory (docs/performance.md).
    catalog_pool_size: int = Field(
        4, ge=1, le=64, description="Catalog connections per process; match the worker's THREADS (shared/server.py)"
    )
    catalog_sqlite_cache_mib: int = Field(
        4, ge=1, le=4096, description="SQLite page cache per connection (MiB): pool size x this bounds the cache"
    )

    # Events: where a function posts those it makes besides its reply (Knative injects K_SINK).
    sink: str | None = Field(
        None, validation_alias=AliasChoices("K_SINK", "REFSYS_SINK"), description="Knative injects K_SINK (the broker)"
    )

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
    odata_download_url_expiry_seconds: int = Field(
        600, gt=0, description="Lifetime of a presigned download URL (the reference's prip-frontend setting)"
    )
    # STAC API (functions/stac): its item assets download through the OData API at this URL.
    stac_odata_url: str | None = Field(None, description="e.g. https://host/odata/v1; default: /odata/v1 beside /stac")
    # The map client (functions/web) and the browsers it runs in: where its APIs are, how it logs in, and
    # which other origins may call the OData and STAC APIs from a browser (shared/web/cors.py).
    web_odata_url: str | None = Field(None, description="the OData root the map client calls; default: /odata/v1")
    web_stac_url: str | None = Field(None, description="the STAC root it reads product types from; default: /stac")
    web_oidc_client_id: str | None = Field(
        None, description="the map client's OIDC client (public, PKCE); default: the audience, else refsys-web"
    )
    web_oidc_scope: str = Field("openid", description="the scopes the map client asks the issuer for")
    cors_origins: str = Field("*", description="origins browsers may call OData/STAC from: *, a comma list, or empty")

    # Processing: a folder with processors.yaml and tasktables/ (default: the set shipped in the package).
    processing_config_dir: str | None = Field(None, description="Default: the configuration shipped in the package")
    # Processing runs: where jobs run (local: a subprocess of the launch function; kubernetes: a batch/v1 Job).
    runner: str = Field("local", pattern="^(local|kubernetes)$", description="local or kubernetes")
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

    # Logs: JSON lines on stderr (docs/observability.md).
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")


# Each setting's declared type (annotations are text here) and its declaration, in the order of the class.
DECLARED: dict[str, tuple[str, Declared]] = {
    name: (annotation, vars(Settings)[name]) for name, annotation in Settings.__annotations__.items()
}
_TYPES: dict[str, Any] = {
    "str": str, "str | None": str | None, "int": int, "float": float, "bool": bool, "list[str]": list[str]
}  # fmt: skip
_PYDANTIC = object()  # a value pydantic is to decide on
_DIGITS = re.compile(r"0|[1-9][0-9]{0,17}")
_DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")
_BOUNDS = {"gt": float.__gt__, "ge": float.__ge__, "lt": float.__lt__, "le": float.__le__}
_BOOLS = {word: True for word in ("1", "on", "t", "true", "y", "yes")} | {
    word: False for word in ("0", "off", "f", "false", "n", "no")
}  # pydantic's, in any case (the platform passes str(True): "True")


@lru_cache(maxsize=1)
def pydantic_model() -> type[BaseModel]:
    """The settings as a pydantic model, built from their declarations: what validates a value that is not plain,
    and what describes the fields (docs/configuration.md). Imports pydantic."""
    import pydantic

    fields: dict[str, Any] = {}
    for name, (annotation, declared) in DECLARED.items():
        arguments = dict(declared.arguments)
        if isinstance(alias := arguments.get("validation_alias"), AliasChoices):
            arguments["validation_alias"] = pydantic.AliasChoices(*alias.choices)
        fields[name] = (_TYPES[annotation], pydantic.Field(*declared.default, **arguments))
    config = pydantic.ConfigDict(extra="ignore", validate_default=True)  # pydantic-settings' defaults
    model: type[BaseModel] = pydantic.create_model("Settings", __config__=config, **fields)
    return model


def _taken(name: str, given: dict[str, Any]) -> Any:
    """A setting's value when it is plain (its default, or a given value pydantic would keep as it is), else
    _PYDANTIC."""
    annotation, declared = DECLARED[name]
    key = _keys(name)[0]
    if key not in given:
        factory = declared.arguments.get("default_factory")
        return factory() if factory is not None else declared.default[0]
    value, arguments = given[key], declared.arguments
    if annotation in ("str", "str | None"):
        if value is None and annotation == "str | None":
            return None
        plain = type(value) is str and ("pattern" not in arguments or re.fullmatch(arguments["pattern"], value))
        return value if plain else _PYDANTIC
    if annotation == "bool":
        if type(value) is bool:
            return value
        return _BOOLS.get(value.lower(), _PYDANTIC) if type(value) is str else _PYDANTIC
    if annotation == "list[str]":
        return list(value) if type(value) is list and all(type(v) is str for v in value) else _PYDANTIC
    number: int | float
    if annotation == "int" and (type(value) is int or (type(value) is str and _DIGITS.fullmatch(value))):
        number = int(value)
    elif annotation == "float" and (type(value) in (int, float) or (type(value) is str and _DECIMAL.fullmatch(value))):
        number = float(value)
    else:
        return _PYDANTIC
    bounded = all(test(float(number), float(arguments[b])) for b, test in _BOUNDS.items() if b in arguments)
    return number if bounded and math.isfinite(number) else _PYDANTIC


def _keys(name: str) -> list[str]:
    """The keys a field is given by: its aliases (the first preferred), else its name."""
    alias = DECLARED[name][1].arguments.get("validation_alias")
    return list(alias.choices) if isinstance(alias, AliasChoices) else [name]


def _by_preferred_key(values: dict[str, Any]) -> dict[str, Any]:
    """Arguments under each field's preferred key, so that they win over the environment whichever alias names
    them (another key, e.g. ``sink`` for a field read as ``K_SINK``, stays as it is: ignored)."""
    given = dict(values)
    for name in DECLARED:
        keys = _keys(name)
        if found := next((key for key in keys if key in given), None):
            given[keys[0]] = given.pop(found)
    return given


def _from_environment() -> dict[str, Any]:
    """Each field's value in the environment: ``REFSYS_<NAME>`` or, for a field with aliases, the first alias
    set (without the prefix), names in any case; lists are JSON."""
    environ = {key.lower(): value for key, value in os.environ.items()}
    found: dict[str, Any] = {}
    for name, (annotation, declared) in DECLARED.items():
        keys = _keys(name)
        variables = keys if "validation_alias" in declared.arguments else [ENV_PREFIX + name]
        value = next((environ[v.lower()] for v in variables if v.lower() in environ), None)
        if value is None:
            continue
        if annotation.startswith("list["):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise SettingsError(f'error parsing value for field "{name}" from source "EnvSettingsSource"') from exc
        found[keys[0]] = value
    return found


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reference() -> str:
    """docs/configuration.md: every setting, its environment variable, default and meaning, in the groups of
    this file (``python -m shared.settings > docs/configuration.md``; a test keeps the page current)."""
    import ast
    import inspect

    source = inspect.getsource(Settings)
    lines = source.splitlines()
    rows = [
        "# Configuration",
        "",
        "Every function and command reads its settings from the environment (`REFSYS_<NAME>`; on a cluster, from",
        "the `refsys-settings` ConfigMap and the `refsys-secrets` Secret). Generated from `shared/settings.py` by",
        "`python -m shared.settings`.",
    ]
    group = None
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        comments: list[str] = []
        for line in reversed(lines[: node.lineno - 1]):
            if not line.strip().startswith("#"):
                break
            comments.insert(0, line.strip().lstrip("# "))
        if comments and " ".join(comments) != group:
            group = " ".join(comments)
            title, _, more = group.partition(": ")
            rows += ["", f"## {title.rstrip('.')}", ""]
            rows += [more[0].upper() + more[1:], ""] if more else []
            rows += ["| variable | default | what |", "| --- | --- | --- |"]
        elif group is None:
            group = "General"
            rows += ["", f"## {group}", "", "| variable | default | what |", "| --- | --- | --- |"]
        name = node.target.id
        field = pydantic_model().model_fields[name]
        choices = getattr(field.validation_alias, "choices", None) or []
        variables = [str(a) for a in choices if str(a).isupper()] or [f"REFSYS_{name.upper()}"]
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None else f"`{default}`"
        what = (field.description or "").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
        rows.append(f"| {', '.join(f'`{v}`' for v in variables)} | {shown} | {what} |")
    return "\n".join(rows).replace("\n\n\n", "\n\n") + "\n"


if __name__ == "__main__":
    print(reference(), end="")
