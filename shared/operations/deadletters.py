"""Dead letters: events whose delivery finally failed, kept in object storage for rules and operators.

Every letter the dead-letter sink receives is kept, even one that is no valid CloudEvent: then its raw
headers and body are stored with a description of the problem, and it can be shown, resubmitted with a
correction or deleted, but not restarted as it is. A letter is one JSON document, ``<state>/<id>.json``:

- ``pending/``   waiting: for its restart rule's due time, or for an operator;
- ``restarted/`` published again (by an operator or a rule) or resubmitted with edits;
- ``deleted/``   put aside by an operator. Moved, not removed: a delete is an operator's judgement
  that can be wrong, and the letter is often the only copy of the event; a lifecycle rule on the
  bucket may expire ``deleted/`` and ``restarted/`` when the site wants.

The id is the key's stem: derived from the event's (source, id), so a letter delivered twice is kept
once, or from the raw bytes of a malformed one. Every action is recorded in the letter's ``history``.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import yaml
from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from events import InvalidEvent, InvalidPayload, parse_data, parse_http
from events.models import EVENT_MODELS
from events.naming import derived_id
from shared.storage.objects import ObjectStore

log = logging.getLogger(__name__)

ERROR_EXTENSIONS = ("knativeerrorcode", "knativeerrordest", "knativeerrordata")
# Restarts by rule so far: travels with the restarted event so the count survives its next failure.
RETRY_COUNT = "retrycount"
# On a resubmitted event: the id of the event it corrects.
RESUBMIT_OF = "resubmitof"
LetterState = Literal["pending", "restarted", "deleted"]
PENDING: Final = "pending"
RESTARTED: Final = "restarted"
DELETED: Final = "deleted"
FORMAT = 1
DEFAULT_RULES_FILE = Path(__file__).with_name("restart_rules.yaml")
_REQUIRED = ("specversion", "id", "source", "type")
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
_LETTER_ID = re.compile(r"[0-9a-f]{32}")


class Publisher(Protocol):
    """Where restarted events go: the broker (``shared.ports.sink()``, a SinkPublisher)."""

    def publish(self, event: CloudEvent) -> None: ...


class LetterNotFound(LookupError):
    """No letter with this id (in this state)."""


class NotRestartable(ValueError):
    """The letter cannot be published as it is (it is no valid CloudEvent)."""


class InvalidEdit(ValueError):
    """A resubmission whose edited event is not valid for its type; the message says why."""


def now_utc() -> datetime:
    return datetime.now(UTC)


# -- the letters ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One stored letter: the document as kept, and what an operator wants to know of it."""

    id: str
    state: LetterState
    document: dict[str, Any]

    @property
    def event(self) -> dict[str, Any] | None:
        """The event in structured JSON form (attributes, ``data``), None for a malformed letter."""
        event = self.document.get("event")
        return event if isinstance(event, dict) else None

    @property
    def problem(self) -> str | None:
        return self.document.get("problem")

    @property
    def received(self) -> datetime:
        return datetime.fromisoformat(self.document["received"])

    def attribute(self, name: str) -> Any:
        """An attribute of the event; of a malformed letter, what its headers or JSON body say."""
        if self.event is not None:
            return self.event.get(name)
        raw = self.document.get("raw") or {}
        headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        if f"ce-{name}" in headers:
            return headers[f"ce-{name}"]
        body = _raw_json(raw)
        return body.get(name) if isinstance(body, dict) else None

    @property
    def event_id(self) -> str | None:
        return _text(self.attribute("id"))

    @property
    def type(self) -> str | None:
        return _text(self.attribute("type"))

    @property
    def subject(self) -> str | None:
        return _text(self.attribute("subject"))

    @property
    def function(self) -> str | None:
        return self.document.get("function")

    @property
    def error_code(self) -> str | None:
        code = self.attribute("knativeerrorcode")
        return None if code is None else str(code)

    @property
    def error_text(self) -> str:
        """The failed delivery's response body, decoded (knativeerrordata is base64, cut at 1024 characters)."""
        data = self.attribute("knativeerrordata")
        if not data:
            return ""
        try:
            return base64.b64decode(str(data) + "=" * (-len(str(data)) % 4)).decode("utf-8", "replace")
        except ValueError:
            return str(data)

    @property
    def error(self) -> dict[str, Any]:
        """The error as the function said it: its HTTP code, and the ``{"error": {code, message}}`` it answered."""
        text = self.error_text
        found: dict[str, Any] = {"httpCode": self.error_code, "destination": self.attribute("knativeerrordest")}
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None  # cut at 1024 characters, or not JSON at all
        detail = body.get("error") if isinstance(body, dict) else None
        if isinstance(detail, dict):
            found.update(name=detail.get("code"), message=detail.get("message"))
        else:
            found.update(name=None, message=text)
        return found

    @property
    def retry(self) -> dict[str, Any]:
        return dict(self.document.get("retry") or {})

    def names(self) -> set[str]:
        """Product (or job) names this letter is about: its subject and the names its data carries."""
        found = {self.subject} if self.subject else set()
        data = self.event.get("data") if self.event is not None else _raw_json(self.document.get("raw") or {})
        if isinstance(data, dict) and self.event is None:
            data = data.get("data")
        found.update(_names_in(data))
        return found

    def mentions(self, name: str) -> bool:
        """Whether this letter is about the product ``name`` (an object key below it counts)."""
        name = name.rstrip("/")
        if any(n == name or n.startswith(name + "/") for n in self.names()):
            return True
        # A malformed letter: the name anywhere in what was received.
        return self.event is None and name in json.dumps(self.document.get("raw"))

    def summary(self) -> dict[str, Any]:
        error = self.error
        return {
            "id": self.id,
            "state": self.state,
            "received": self.document["received"],
            "function": self.function,
            "eventId": self.event_id,
            "type": self.type,
            "source": _text(self.attribute("source")),
            "subject": self.subject,
            "errorCode": self.error_code,
            "error": error["message"],
            "errorName": error["name"],
            "problem": self.problem,
            "retry": self.retry or None,
        }

    def detail(self) -> dict[str, Any]:
        """Everything: the summary, the whole event (or what was received), the decoded error, the history."""
        return {
            **self.summary(),
            "event": self.event,
            "raw": self.document.get("raw"),
            "errorDetail": self.error,
            "history": self.document.get("history", []),
        }

    def cloud_event(self) -> CloudEvent:
        """The original event as it was sent, without the broker's knativeerror* extensions."""
        if self.event is None:
            raise NotRestartable(f"{self.problem}; resubmit it with corrected attributes, or delete it")
        attributes = {k: v for k, v in self.event.items() if k not in ("data", "data_base64", *ERROR_EXTENSIONS)}
        return CloudEvent(attributes, _event_data(self.event))


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def _raw_json(raw: Mapping[str, Any]) -> Any:
    if raw.get("encoding") != "utf-8":
        return None
    try:
        return json.loads(raw.get("body") or "")
    except ValueError:
        return None


def _event_data(event: Mapping[str, Any]) -> Any:
    if "data_base64" in event:
        return base64.b64decode(event["data_base64"])
    return event.get("data")


def _names_in(data: Any) -> set[str]:
    """Names a payload carries: ``product.name``, ``name``, ``key``, and the names of its inputs and outputs."""
    found: set[str] = set()
    if not isinstance(data, dict):
        return found
    product = data.get("product")
    if isinstance(product, dict) and isinstance(product.get("name"), str):
        found.add(product["name"])
    for key in ("name", "key", "job_key"):
        if isinstance(data.get(key), str):
            found.add(data[key])
    for key in ("inputs", "outputs"):
        for item in data.get(key) or ():
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                found.add(item["name"])
    return found


# -- what an event must be ----------------------------------------------------------------------------------


def envelope_problem(attributes: Mapping[str, Any]) -> str | None:
    """Why these attributes are no CloudEvent that can be published again (None: they are one).

    The SDK accepts what JSON gives (a ``type`` that is a list, say) and fails only when sending it: found
    here, the letter is kept as received and marked, instead of breaking every restart after it.
    """
    problems = []
    for name in _REQUIRED:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            problems.append(f"attribute {name!r} must be a non-empty string, not {json.dumps(value)}")
    for name, value in attributes.items():
        if name in _REQUIRED or name in ("data", "data_base64"):
            continue
        if not _EXTENSION_NAME.fullmatch(name):
            problems.append(f"attribute name {name!r} is not 1-20 lowercase letters or digits")
        elif isinstance(value, list | dict) or value is None:
            problems.append(f"attribute {name!r} must be a string, number or boolean, not {json.dumps(value)}")
    if isinstance(attributes.get("time"), str):
        try:
            datetime.fromisoformat(attributes["time"].replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"attribute 'time' is no RFC 3339 time: {attributes['time']!r}")
    return "; ".join(problems) or None


def validated_event(attributes: Mapping[str, Any], data: Any) -> CloudEvent:
    """An event to publish, checked as a consumer would: its envelope, and its data against its type's model.

    A type of ours gets the subject and routing extensions its (edited) data implies, so the Triggers route
    it where the data says. A type that is not ours (e.g. Kubernetes API events) is checked as an envelope.
    """
    attributes = dict(attributes)
    attributes.setdefault("specversion", "1.0")
    if (problem := envelope_problem(attributes)) is not None:
        raise InvalidEdit(problem)
    event = CloudEvent(attributes, data)
    if event["type"] in EVENT_MODELS:
        try:
            payload = parse_data(event)
        except InvalidPayload as exc:
            raise InvalidEdit(str(exc)) from None
        for name, value in payload.routing().items():
            event[name] = value
        if (subject := payload.subject()) is not None:
            event["subject"] = subject
    return event


# -- restart rules ------------------------------------------------------------------------------------------


class RestartRule(BaseModel):
    """One rule of the restart rules file (see restart_rules.yaml for the fields)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str
    error_code: list[str] | None = Field(None, alias="errorCode")
    error: str | None = None
    types: list[str] | None = None
    functions: list[str] | None = None
    action: Literal["restart", "keep"]
    max_retries: int = Field(0, ge=0, alias="maxRetries")
    backoff: float = Field(60.0, ge=0)
    max_backoff: float = Field(3600.0, ge=0, alias="maxBackoff")

    @field_validator("error_code", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if value is None:
            return None
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    @field_validator("error")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def matches(self, letter: DeadLetter) -> bool:
        code = letter.error_code or ""
        if self.error_code is not None and not any(_code_matches(pattern, code) for pattern in self.error_code):
            return False
        if self.error is not None and not re.search(self.error, letter.error_text):
            return False
        if self.types is not None and not any(fnmatch.fnmatchcase(letter.type or "", t) for t in self.types):
            return False
        return self.functions is None or letter.function in self.functions

    def wait(self, retries_done: int) -> float:
        """Seconds before restart number ``retries_done + 1``: exponential from ``backoff``."""
        return float(min(self.max_backoff, self.backoff * 2**retries_done))


class RestartRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[RestartRule] = Field(default_factory=list)

    def first_match(self, letter: DeadLetter) -> RestartRule | None:
        return next((rule for rule in self.rules if rule.matches(letter)), None)


def _code_matches(pattern: str, code: str) -> bool:
    if len(pattern) == 3 and pattern.endswith("xx"):
        return len(code) == 3 and code[0] == pattern[0]
    return pattern == code


def load_rules(path: str | Path | None = None) -> RestartRules:
    """The restart rules: the file ``path`` (the ``deadletter_rules_file`` setting), else the shipped defaults."""
    file = Path(path) if path else DEFAULT_RULES_FILE
    try:
        raw = yaml.safe_load(file.read_text()) or {}
        return RestartRules.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError, re.error) as exc:
        raise ValueError(f"restart rules {file}: {exc}") from exc


# -- the filters -------------------------------------------------------------------------------------------


class LetterFilter(BaseModel):
    """Which letters: every field given must match (HTTP query parameters, or ``{"filter": {...}}``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    state: LetterState = PENDING
    function: str | None = Field(None, description="the Knative Service the delivery failed to")
    type: str | None = Field(None, description="event type, or a glob: org.refsys.product.*")
    error_code: str | None = Field(None, alias="errorCode", description="422, 0, or a class: 5xx")
    error: str | None = Field(None, description="text the decoded error contains (any case)")
    subject: str | None = Field(None, description="glob on the subject and the product names of the data")
    since: AwareDatetime | None = Field(None, description="received at or after")
    until: AwareDatetime | None = Field(None, description="received before")
    malformed: bool | None = Field(None, description="true: only letters that are no valid CloudEvent")

    def matches(self, letter: DeadLetter) -> bool:
        if self.function is not None and letter.function != self.function:
            return False
        if self.type is not None and not fnmatch.fnmatchcase(letter.type or "", self.type):
            return False
        if self.error_code is not None and not _code_matches(self.error_code, letter.error_code or ""):
            return False
        if self.error is not None and self.error.lower() not in letter.error_text.lower():
            return False
        if self.subject is not None and not any(fnmatch.fnmatchcase(n, self.subject) for n in letter.names()):
            return False
        if self.since is not None and letter.received < self.since:
            return False
        if self.until is not None and letter.received >= self.until:
            return False
        return self.malformed is None or self.malformed == (letter.event is None)


# -- batches ------------------------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    """The answer of a batch, as the reference's Request Parking Lot gives it."""

    action: str
    ids_with_success: list[str] = field(default_factory=list)
    ids_skipped: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "idsWithSuccess": self.ids_with_success, "idsSkipped": self.ids_skipped}


# -- the store ----------------------------------------------------------------------------------------------


@dataclass
class DeadLetters:
    """The letters in ``bucket``; ``services`` maps a function server's base URL to its Service name where a
    delivery URL does not name it (the embedded platform's loopback ports)."""

    store: ObjectStore
    bucket: str
    rules: RestartRules = field(default_factory=RestartRules)
    services: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = now_utc

    # -- keeping --

    def keep(self, event: CloudEvent) -> DeadLetter:
        """Keep a letter the SDK could read (its attributes may still be unusable: then it is kept as received)."""
        document = json.loads(to_json(event))
        if (problem := envelope_problem(event.get_attributes())) is not None:
            body = json.dumps(document).encode()
            return self._keep_raw({"content-type": "application/cloudevents+json"}, body, problem)
        letter_id = derived_id(event["source"], event["id"])
        return self._keep(letter_id, {"event": document, "problem": None}, event.get("knativeerrordest"))

    def keep_request(self, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes) -> DeadLetter:
        """Keep whatever the dead-letter sink received: a CloudEvent, or the bytes with why they are none."""
        try:
            event = parse_http(headers, body)
        except InvalidEvent as exc:
            return self._keep_raw(headers, body, str(exc))
        if (problem := envelope_problem(event.get_attributes())) is not None:
            return self._keep_raw(headers, body, problem)  # as received: the SDK would add a time of its own
        return self.keep(event)

    def _keep_raw(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes, problem: str
    ) -> DeadLetter:
        kept = {k: v for k, v in dict(headers).items() if k.lower().startswith("ce-") or k.lower() == "content-type"}
        try:
            raw = {"headers": kept, "body": body.decode("utf-8"), "encoding": "utf-8"}
        except UnicodeDecodeError:
            raw = {"headers": kept, "body": base64.b64encode(body).decode("ascii"), "encoding": "base64"}
        letter_id = derived_id("raw", json.dumps(kept, sort_keys=True), body.hex())
        destination = {k.lower(): v for k, v in kept.items()}.get("ce-knativeerrordest")
        if destination is None and isinstance(parsed := _raw_json(raw), dict):
            destination = parsed.get("knativeerrordest")
        return self._keep(letter_id, {"event": None, "raw": raw, "problem": f"not a valid CloudEvent: {problem}"},
                          _text(destination))  # fmt: skip

    def _keep(self, letter_id: str, content: dict[str, Any], destination: str | None) -> DeadLetter:
        self.store.ensure_bucket(self.bucket)
        # A letter restarted before keeps its history: the same event failing again is the same story.
        before = self._read(RESTARTED, letter_id)
        history = list(before.document.get("history", [])) if before is not None else []
        history.append({"action": "dead-lettered", "time": self.clock().isoformat()})
        document = {
            "format": FORMAT,
            "id": letter_id,
            "received": self.clock().isoformat(),
            "function": service_of(destination, self.services),
            **content,
            "retry": None,
            "history": history,
        }
        letter = DeadLetter(letter_id, PENDING, document)
        letter.document["retry"] = self._schedule(letter)
        self._write(letter)
        log.warning(
            "dead letter %s: %s for %s, error %s%s",
            letter_id,
            letter.type,
            letter.function,
            letter.error_code,
            f" ({letter.problem})" if letter.problem else "",
        )
        return letter

    def _schedule(self, letter: DeadLetter) -> dict[str, Any] | None:
        """The restart rule's decision: when to restart the letter, or why it waits for an operator."""
        if letter.event is None:
            return None
        rule = self.rules.first_match(letter)
        if rule is None:
            return None
        done = _count(letter.event.get(RETRY_COUNT))
        decision: dict[str, Any] = {"rule": rule.name, "count": done, "maxRetries": rule.max_retries}
        if rule.action == "restart" and done < rule.max_retries:
            decision["dueAt"] = (self.clock() + timedelta(seconds=rule.wait(done))).isoformat()
        else:
            decision["dueAt"] = None
            decision["exhausted"] = rule.action == "restart"
        return decision

    # -- reading --

    def get(self, letter_id: str, state: LetterState = PENDING) -> DeadLetter:
        letter = self._read(state, letter_id) if _LETTER_ID.fullmatch(letter_id) else None
        if letter is None:
            raise LetterNotFound(f"no {state} dead letter with id {letter_id!r}")
        return letter

    def letters(self, state: LetterState = PENDING) -> Iterator[DeadLetter]:
        """Every letter in ``state``, in the order of the keys; a stored document that cannot be read is
        logged and left out rather than stopping the listing."""
        self.store.ensure_bucket(self.bucket)
        for obj in self.store.iter(self.bucket, f"{state}/"):
            letter_id = obj.key.removeprefix(f"{state}/").removesuffix(".json")
            try:
                letter = self._read(state, letter_id)
            except ValueError as exc:
                log.error("dead letter document %s/%s unreadable: %s", self.bucket, obj.key, exc)
                continue
            if letter is not None:
                yield letter

    def pending(self) -> list[DeadLetter]:
        return list(self.letters(PENDING))

    def select(self, where: LetterFilter) -> list[DeadLetter]:
        """The matching letters, oldest first (as the reference orders its failed processings)."""
        return sorted((x for x in self.letters(where.state) if where.matches(x)), key=lambda x: (x.received, x.id))

    def count(self, where: LetterFilter) -> dict[str, Any]:
        chosen = self.select(where)
        groups = Counter((x.function, x.type, x.error_code) for x in chosen)
        return {
            "total": len(chosen),
            "byFunction": dict(Counter(str(x.function) for x in chosen)),
            "byType": dict(Counter(str(x.type) for x in chosen)),
            "byErrorCode": dict(Counter(str(x.error_code) for x in chosen)),
            "groups": [
                {"function": f, "type": t, "errorCode": c, "count": n}
                for (f, t, c), n in sorted(groups.items(), key=lambda item: -item[1])
            ],
        }

    # -- actions --

    def restart(self, letter: DeadLetter, publisher: Publisher, *, by: Literal["operator", "rule"] = "operator") -> str:
        """Publish the original event again and file the letter under restarted/; the event id it was sent with.

        By a rule, the event carries the count of rule restarts (``retrycount``). By an operator it does not:
        the operator has looked into it, so a failure after that gets the rule's retries afresh (the
        reference increments its retryCounter on every restart, leaving less room after a manual fix).
        """
        event = letter.cloud_event()
        count = _count(letter.event.get(RETRY_COUNT) if letter.event else None)
        if by == "rule":
            event[RETRY_COUNT] = str(count + 1)
        elif RETRY_COUNT in event.get_attributes():
            del event[RETRY_COUNT]
        # Filed before it is sent: the same event failing again at once comes back as a pending letter of the
        # same id, which filing it afterwards would remove. If the broker refuses it, it is pending again.
        self._file(letter, RESTARTED, {"action": "restart", "by": by, "eventId": event["id"]})
        try:
            publisher.publish(event)
        except BaseException:
            self._write(letter)
            raise
        log.info("restarted dead letter %s (event %s, by %s)", letter.id, event["id"], by)
        return str(event["id"])

    def resubmit(self, letter: DeadLetter, edits: Mapping[str, Any], publisher: Publisher) -> str:
        """Publish a corrected event, with a new id, and file the letter under restarted/.

        ``edits``: ``data`` replaces the payload, ``dataPatch`` merges into it (RFC 7396: null removes a
        field), ``attributes`` sets attributes (null removes an extension). The result is validated like any
        event of its type; :class:`InvalidEdit` says what is wrong.
        """
        unknown = set(edits) - {"data", "dataPatch", "attributes"}
        if unknown:
            raise InvalidEdit(f"unknown edits {sorted(unknown)}: give data, dataPatch and/or attributes")
        if "data" in edits and "dataPatch" in edits:
            raise InvalidEdit("give data (a new payload) or dataPatch (changes to it), not both")
        base = self._editable(letter)
        attributes = {k: v for k, v in base.items() if k not in ("data", "data_base64", *ERROR_EXTENSIONS)}
        attributes.pop(RETRY_COUNT, None)
        data = _event_data(base)
        changes = edits.get("attributes") or {}
        if not isinstance(changes, dict):
            raise InvalidEdit("attributes must be an object of attribute names and values")
        for name, value in changes.items():
            if name in ("id", "data", "data_base64", *ERROR_EXTENSIONS):
                raise InvalidEdit(f"attribute {name!r} cannot be edited (a resubmitted event gets a new id)")
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
        if "data" in edits:
            data = edits["data"]
        elif "dataPatch" in edits:
            if isinstance(data, bytes | str):
                try:
                    data = json.loads(data)
                except ValueError:
                    raise InvalidEdit("dataPatch needs a JSON payload; give data instead") from None
            data = merge_patch(data, edits["dataPatch"])
        original_id = attributes.get("id")
        content = json.dumps({"attributes": attributes, "data": data}, sort_keys=True, default=str)
        # Derived, not random: the same correction sent twice is recognisably one event.
        attributes["id"] = derived_id("resubmit", letter.id, content)
        if isinstance(original_id, str):
            attributes[RESUBMIT_OF] = original_id
        attributes["time"] = self.clock().isoformat()
        event = validated_event(attributes, data)
        publisher.publish(event)
        self._file(letter, RESTARTED, {"action": "resubmit", "by": "operator", "eventId": event["id"], "edits": edits})
        log.info("resubmitted dead letter %s as event %s", letter.id, event["id"])
        return str(event["id"])

    def delete(self, letter: DeadLetter) -> None:
        """Put the letter aside under deleted/ (see the module docstring for why it is not removed)."""
        self._file(letter, DELETED, {"action": "delete", "by": "operator"})
        log.info("deleted dead letter %s (kept under %s/)", letter.id, DELETED)

    def batch(
        self,
        action: str,
        run: Callable[[DeadLetter], object],
        ids: Iterable[str] | None = None,
        where: LetterFilter | None = None,
    ) -> BatchOutcome:
        """Apply ``run`` to each chosen pending letter; one that fails is skipped with its reason, the rest go on."""
        outcome = BatchOutcome(action)
        chosen: list[DeadLetter | tuple[str, str]] = []
        if ids is not None:
            for letter_id in dict.fromkeys(ids):  # once each, in the order given
                try:
                    chosen.append(self.get(letter_id))
                except LetterNotFound as exc:
                    chosen.append((letter_id, str(exc)))
        else:
            chosen.extend(self.select(where or LetterFilter()))
        for item in chosen:
            if isinstance(item, tuple):
                outcome.ids_skipped.append({"id": item[0], "reason": item[1]})
                continue
            try:
                run(item)
            except Exception as exc:  # one letter never blocks the others: say why it was skipped
                reason = str(exc) if isinstance(exc, NotRestartable | InvalidEdit) else f"{type(exc).__name__}: {exc}"
                outcome.ids_skipped.append({"id": item.id, "reason": reason})
            else:
                outcome.ids_with_success.append(item.id)
        return outcome

    def restart_due(self, sink: Callable[[], Publisher]) -> dict[str, int]:
        """Restart the pending letters whose rule's time has come (the operations function's tick).

        ``sink()`` is asked for the publisher only when a letter is due: a tick with nothing to do needs none.
        """
        now = self.clock()
        restarted = failed = 0
        for letter in self.letters(PENDING):
            due = letter.retry.get("dueAt")
            if not due or datetime.fromisoformat(due) > now:
                continue
            try:
                self.restart(letter, sink(), by="rule")
                restarted += 1
            except Exception:  # the next tick tries again; the others go on
                log.exception("rule restart of dead letter %s failed", letter.id)
                failed += 1
        return {"deadLettersRestarted": restarted, "deadLettersRestartFailed": failed}

    # -- internals --

    def _editable(self, letter: DeadLetter) -> dict[str, Any]:
        """The event to edit: the stored one, or a malformed letter's JSON body or ce-* headers."""
        if letter.event is not None:
            return dict(letter.event)
        raw = letter.document.get("raw") or {}
        body = _raw_json(raw)
        if isinstance(body, dict) and "specversion" in body:
            return body
        headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        attributes: dict[str, Any] = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        if "content-type" in headers:
            attributes["datacontenttype"] = headers["content-type"]
        attributes["data"] = body if body is not None else raw.get("body")
        return attributes

    def _file(self, letter: DeadLetter, state: LetterState, action: dict[str, Any]) -> None:
        """Move a pending letter to ``state``, with the action in its history. Written before the pending one
        is removed: a crash between leaves it in both places, never in none."""
        action = {**action, "time": self.clock().isoformat()}
        document = {**letter.document, "history": [*letter.document.get("history", []), action]}
        if state != PENDING:
            document["retry"] = None
        self._write(DeadLetter(letter.id, state, document))
        self.store.delete(self.bucket, _key(PENDING, letter.id))

    def _write(self, letter: DeadLetter) -> None:
        body = json.dumps(letter.document, indent=1).encode()
        self.store.put(self.bucket, _key(letter.state, letter.id), body, "application/json")

    def _read(self, state: LetterState, letter_id: str) -> DeadLetter | None:
        body = self.store.read(self.bucket, _key(state, letter_id))
        if body is None:
            return None
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if isinstance(document, dict) and "format" not in document and "specversion" in document:
            document = _from_first_format(document)  # a letter kept before this format: the bare event
        if not isinstance(document, dict) or "received" not in document:
            raise ValueError("not a dead letter document")
        return DeadLetter(letter_id, state, document)


def _from_first_format(event: dict[str, Any]) -> dict[str, Any]:
    problem = envelope_problem({k: v for k, v in event.items() if k not in ("data", "data_base64")})
    received = event.get("time") if isinstance(event.get("time"), str) else datetime(1970, 1, 1, tzinfo=UTC)
    document: dict[str, Any] = {"format": FORMAT, "received": str(received), "function": None, "history": []}
    if problem is None:
        return {**document, "event": event, "problem": None}
    raw = {"headers": {}, "body": json.dumps(event), "encoding": "utf-8"}
    return {**document, "event": None, "raw": raw, "problem": f"not a valid CloudEvent: {problem}"}


def _key(state: str, letter_id: str) -> str:
    return f"{state}/{letter_id}.json"


def _count(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def service_of(destination: str | None, services: Mapping[str, str]) -> str | None:
    """The Knative Service a delivery went to, from ``knativeerrordest``: the host's first label on a cluster
    (``http://catalog.refsys.svc.cluster.local/events``), else the base URL looked up in ``services``."""
    if not destination:
        return None
    parts = urlsplit(destination)
    base = f"{parts.scheme}://{parts.netloc}"
    if base in services:
        return services[base]
    host = parts.hostname or ""
    if not host or host == "localhost" or host.replace(".", "").isdigit() or ":" in host:
        return None  # an address names no Service
    return host.split(".", 1)[0]


@lru_cache(maxsize=4)
def _services_in(path: Path, mtime: float) -> dict[str, str]:
    functions = json.loads(path.read_text()).get("functions") or {}
    return {str(url).rstrip("/"): str(name) for name, url in functions.items()}


def local_services(data_dir: Path | None = None) -> dict[str, str]:
    """Function server URL -> Service name of the embedded platform, from its ``endpoints.json`` (its function
    servers run in the data directory: ``data_dir`` defaults to the working directory). Empty elsewhere."""
    path = (data_dir or Path.cwd()) / "endpoints.json"
    try:
        return _services_in(path, path.stat().st_mtime)
    except (OSError, ValueError, AttributeError):
        return {}
