"""The local broker of the embedded platform: a Knative Broker/Trigger data plane in one process.

Ingress (like the MT broker ingress, ``POST /<namespace>/<broker>``): a binary- or
structured-mode CloudEvent is stored durably with one delivery per matching Trigger, then
answered 202. Dispatchers: each Trigger has its own worker threads (``Trigger.parallelism`` of
them, else ``workers``) that claim only that Trigger's due deliveries, oldest first, as the Kafka
and RabbitMQ brokers give each Trigger its own consumer: a flood on one Trigger never delays
another's. An ``ordered`` Trigger delivers one event at a time in enqueue order, a retrying one
holding back the next. Workers POST to the Trigger subscribers in binary mode with
``Prefer: reply`` and apply Knative's outcome rules:

* 2xx, empty body: done. 202: done, any body ignored (data-plane spec: never a reply).
* other 2xx with a CloudEvent body: the reply is published into the same broker (all Triggers
  are evaluated) in the same transaction that completes the delivery.
* other 2xx with a non-empty body that is not a CloudEvent: failure with status 502 (MT broker).
* retryable failure (transport error, 5xx, 404, 408, 409, 429): retried with the Trigger's
  backoff, ``retry`` times; then, or at once for any other status, the original event goes to
  the dead-letter sink with knativeerrordest/-code/-data; if that fails too (after the same
  retries) the delivery is kept as ``dead``. Without a dead-letter sink: ``dead`` at once.

Archive: the queue keeps every event with its deliveries' outcomes (``shared.operations.archive`` reads
them for replays); events older than ``retention_s`` whose deliveries are finished are purged at start and
every hour.

Loop guard: the ``knativebrokerttl`` extension is set to 255 on ingress or decremented when
present (a reply inherits the TTL of the event it answers); an event reaching 0 is logged and
dropped (ingress still answers 202). The extension is removed before delivery to subscribers.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from cloudevents.abstract import CloudEvent as AnyCloudEvent

from shared.bus.codec import (
    InvalidEvent,
    Record,
    attributes,
    from_cloudevent,
    is_cloudevent_message,
    parse_http,
    to_binary,
)
from shared.bus.delivery import RetryPlan, error_extensions, is_retryable
from shared.bus.filters import matches
from shared.bus.manifests import Destination, Topology, Trigger
from shared.bus.queue import Delivery, EventQueue, NewEvent, QueueClosed, State, Target
from shared.security.senders import sender_headers

log = logging.getLogger(__name__)

Resolve = Callable[[Destination], str]

TTL_EXTENSION = "knativebrokerttl"
MAX_TTL = 255
MAX_BODY_BYTES = 64 * 1024 * 1024
# Safety net only: workers are woken by their Trigger's enqueues and sleep until its next due retry.
_MAX_IDLE_SECONDS = 60.0
# Wait before retrying a delivery that failed inside the broker (not at the subscriber).
_ERROR_RETRY_SECONDS = 5.0
DEFAULT_RETENTION_S = 30 * 86400.0
_PURGE_EVERY_S = 3600.0


@dataclass(frozen=True)
class _Response:
    status: int | None  # None: no HTTP response (connection refused, timeout...)
    error: str | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Dispatcher:
    """The workers of one Trigger and what wakes them."""

    def __init__(self, trigger: Trigger, workers: int) -> None:
        self.trigger = trigger
        self.workers = workers
        self.wakeup = threading.Condition()
        self.generation = 0  # bumped on every wake-up, so a wake-up between check and wait is not lost
        self.threads: list[threading.Thread] = []

    def wake(self, count: int | None = None) -> None:
        """Wake ``count`` idle workers (one per new delivery), or all of them."""
        with self.wakeup:
            self.generation += 1
            if count is None:
                self.wakeup.notify_all()
            else:
                self.wakeup.notify(count)


class LocalBroker:
    """Brokers and Triggers of a Topology, backed by a durable SQLite queue at ``db_path``.

    The database is opened and the ingress port bound at construction (so ``ingress_url`` is
    known before ``start()``); ``start()`` begins serving and dispatching. One use only: after
    ``stop()`` create a new LocalBroker on the same ``db_path`` to resume. ``workers`` is the
    concurrency of a Trigger whose annotations do not set one (see ``shared.bus.manifests``).
    """

    def __init__(
        self,
        topology: Topology,
        db_path: Path,
        resolve: Resolve,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 4,
        retention_s: float = DEFAULT_RETENTION_S,
        event_secret: str | None = None,
    ) -> None:
        if not topology.brokers:
            raise ValueError("the topology has no Broker")
        for trigger in topology.triggers.values():
            if trigger.broker not in topology.brokers:
                raise ValueError(f"trigger {trigger.name!r} refers to unknown broker {trigger.broker!r}")
        self.topology = topology
        self._resolve = resolve
        self._retention_s = retention_s
        # Sent with every delivery: the functions accept events from their broker only (shared/security/senders.py);
        # and asked of every publisher at the ingress (the functions' K_SINK posts), so no one else can publish.
        self._sender_headers = sender_headers(event_secret)
        self._event_secret = event_secret
        default = max(1, workers)
        self._dispatchers = {
            name: _Dispatcher(trigger, trigger.parallelism or default) for name, trigger in topology.triggers.items()
        }
        self._default = "default" if "default" in topology.brokers else next(iter(topology.brokers))
        self._paths = {f"/{b.namespace}/{b.name}": b.name for b in topology.brokers.values()}
        self._paths["/"] = self._default

        self._queue = EventQueue(Path(db_path))
        if self._queue.recovered:
            log.warning(
                "%d deliveries were in flight when the broker last stopped: retrying them", self._queue.recovered
            )
        try:
            self._server = _IngressServer((host, port), self)
        except BaseException:
            self._queue.close()
            raise
        bound_host, bound_port = self._server.server_address[:2]
        self._url_host = "127.0.0.1" if bound_host in ("0.0.0.0", "") else str(bound_host)
        self._port = int(bound_port)

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started = self._stopped = False
        self._dropped = 0

    # -- public API -------------------------------------------------------------------------------
    @property
    def ingress_url(self) -> str:
        """URL of the default broker (the one named ``default``, else the first)."""
        return self.url_for(self._default)

    def url_for(self, broker: str) -> str:
        namespace = self.topology.brokers[broker].namespace
        return f"http://{self._url_host}:{self._port}/{namespace}/{broker}"

    def start(self) -> None:
        if self._started or self._stopped:
            raise RuntimeError("a LocalBroker can be started once")
        self._started = True
        self._settle_unknown()
        # A short poll interval only makes stop() quick; requests are served as they arrive.
        server = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="broker-ingress", daemon=True)
        for name, dispatcher in self._dispatchers.items():
            dispatcher.threads = [
                threading.Thread(target=self._work, args=(dispatcher,), name=f"broker-{name}-{i}", daemon=True)
                for i in range(dispatcher.workers)
            ]
        retention = threading.Thread(target=self._purge_periodically, name="broker-retention", daemon=True)
        for thread in (server, retention, *self._threads()):
            thread.start()
        log.info(
            "broker ingress listening on %s; workers per trigger: %s",
            self.ingress_url,
            ", ".join(
                f"{name} {d.workers}{' (ordered)' if d.trigger.ordered else ''}"
                for name, d in self._dispatchers.items()
            ),
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let running deliveries finish for up to ``timeout`` s, close the queue.

        Deliveries still running after that stay unfinished and go back to pending (they are
        retried by the next broker on this database).
        """
        if self._stopped:
            return
        self._stopped = True
        if self._started:
            self._server.shutdown()
        self._server.server_close()
        self._stopping.set()
        for dispatcher in self._dispatchers.values():
            dispatcher.wake()
        deadline = time.monotonic() + timeout
        threads = self._threads()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        running = sum(thread.is_alive() for thread in threads)
        if running:
            log.warning("%d deliveries still running at stop: they go back to pending", running)
        self._queue.close()

    def publish(self, event: AnyCloudEvent, broker: str | None = None) -> None:
        """Enqueue an SDK CloudEvent in-process, exactly as if it was POSTed to the ingress."""
        self.ingest(from_cloudevent(event), broker or self._default)

    def ingest(self, record: Record, broker: str) -> bool:
        """Stamp the TTL, match Triggers, store durably. False when the TTL guard dropped it."""
        if broker not in self.topology.brokers:
            raise ValueError(f"unknown broker {broker!r}")
        if not self._stamp_ttl(record):
            return False
        event = NewEvent(record, broker, self._matching(broker, record))
        self._queue.enqueue(event)
        self._wake(event.triggers)
        return True

    def stats(self) -> dict[str, Any]:
        """Delivery counts per state, stored events, TTL drops since start, and ``per_trigger``:
        {trigger: {state: count}} for every Trigger of the manifests and any other still in the queue."""
        stats = self._queue.stats()
        per_trigger = {name: dict.fromkeys((state.value for state in State), 0) for name in self.topology.triggers}
        per_trigger.update(stats.pop("per_trigger"))
        return {**stats, "dropped": self._dropped, "per_trigger": per_trigger}

    def deliveries(self, event_id: str | None = None) -> list[dict[str, Any]]:
        """Delivery rows (state, attempts, last status...), for monitoring and tests."""
        return self._queue.deliveries(event_id)

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _publisher_known(self, authorization: str | None) -> bool:
        if not self._event_secret:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        # Constant time, as the functions check it (shared/security/senders.py).
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._event_secret.encode())

    # -- routing ------------------------------------------------------------------------------------
    def _broker_for_path(self, path: str) -> str | None:
        return self._paths.get(path.rstrip("/") or "/")

    def _matching(self, broker: str, record: Record) -> list[str]:
        attrs = attributes(record)
        return [t.name for t in self.topology.triggers.values() if t.broker == broker and matches(t, attrs)]

    def _stamp_ttl(self, record: Record) -> bool:
        raw = record.get(TTL_EXTENSION)
        try:
            ttl = MAX_TTL if raw is None else int(raw) - 1
        except (TypeError, ValueError):
            ttl = MAX_TTL  # unreadable TTL: default it, like the MT broker
        if ttl <= 0:
            with self._lock:  # ingress threads and workers both drop
                self._dropped += 1
            log.warning(
                "dropping event id=%s type=%s source=%s: %s exhausted (event loop?)",
                record.get("id"),
                record.get("type"),
                record.get("source"),
                TTL_EXTENSION,
            )
            return False
        record[TTL_EXTENSION] = ttl
        return True

    # -- dispatcher ---------------------------------------------------------------------------------
    def _threads(self) -> list[threading.Thread]:
        return [thread for dispatcher in self._dispatchers.values() for thread in dispatcher.threads]

    def _wake(self, triggers: Iterable[str]) -> None:
        """One worker per new delivery, of its Trigger only."""
        for name in triggers:
            self._dispatchers[name].wake(1)

    def _settle_unknown(self) -> None:
        """Deliveries of Triggers gone from the manifests since their events were stored: no worker
        claims them, keep them visibly as ``dead``."""
        gone = self._queue.settle_unknown(
            list(self._dispatchers), now=time.time(), error="the trigger is no longer in the manifests"
        )
        for name, count in gone.items():
            log.error("%d deliveries to trigger %s -> dead: it is no longer in the manifests", count, name)

    def _work(self, dispatcher: _Dispatcher) -> None:
        trigger = dispatcher.trigger
        session = requests.Session()
        try:
            while not self._stopping.is_set():
                with dispatcher.wakeup:
                    generation = dispatcher.generation
                delivery = self._queue.claim(time.time(), trigger.name, in_order=trigger.ordered)
                if delivery is None:
                    self._sleep(dispatcher, generation)
                    continue
                try:
                    self._deliver(delivery, trigger, session)
                except QueueClosed:
                    raise
                except Exception as exc:
                    # A bug or a storage error (e.g. the reply could not be stored): try again later.
                    log.exception("delivery %d of event %s failed unexpectedly", delivery.id, delivery.event_id)
                    self._retry_after_error(delivery, exc)
        except QueueClosed:
            pass  # stopping; unfinished deliveries were put back to pending
        finally:
            session.close()

    def _retry_after_error(self, delivery: Delivery, exc: Exception) -> None:
        now = time.time()
        try:
            self._queue.settle(
                delivery,
                state=State.PENDING,
                now=now,
                next_at=now + _ERROR_RETRY_SECONDS,
                error=f"broker error: {type(exc).__name__}: {exc}",
            )
        except QueueClosed:
            pass  # stopping: the row goes back to pending with the other in-flight ones
        except Exception:  # the database itself fails: the row stays in-flight until the next start
            log.exception("cannot reschedule delivery %d", delivery.id)
        else:
            self._dispatchers[delivery.trigger].wake()

    def _purge_periodically(self) -> None:
        while True:
            try:
                purged = self._queue.purge(self._retention_s)
            except QueueClosed:
                return
            except Exception:
                log.exception("purging the event archive failed; trying again in an hour")
            else:
                if purged:
                    log.info("event archive: %d events older than %.0f days purged", purged, self._retention_s / 86400)
            if self._stopping.wait(_PURGE_EVERY_S):
                return

    def _sleep(self, dispatcher: _Dispatcher, generation: int) -> None:
        trigger = dispatcher.trigger
        due = self._queue.next_due(trigger.name, in_order=trigger.ordered)
        timeout = _MAX_IDLE_SECONDS if due is None else min(_MAX_IDLE_SECONDS, max(0.0, due - time.time()))
        with dispatcher.wakeup:
            if dispatcher.generation == generation and not self._stopping.is_set():
                dispatcher.wakeup.wait(timeout)

    def _deliver(self, delivery: Delivery, trigger: Trigger, session: requests.Session) -> None:
        if delivery.target is Target.SUBSCRIBER:
            self._to_subscriber(delivery, trigger, session)
        else:
            self._to_dead_letter(delivery, trigger, session)

    def _to_subscriber(self, delivery: Delivery, trigger: Trigger, session: requests.Session) -> None:
        spec = self.topology.delivery_for(trigger)
        plan = RetryPlan.from_spec(spec)
        url, response = self._send(session, trigger.subscriber, delivery.record, plan.timeout, reply=True)
        now = time.time()
        if response.ok:
            reply, problem = self._reply_of(delivery, response)
            if problem is None:
                self._queue.settle(delivery, state=State.DELIVERED, now=now, status=response.status, reply=reply)
                note = f"reply {reply.record['type']} -> {list(reply.triggers)}" if reply else ""
                self._log(delivery, "delivered", response.status, note)
                if reply is not None:
                    self._wake(reply.triggers)
                return
            response = _Response(502, problem, response.body)
        wait = plan.wait_after(delivery.attempts + 1) if is_retryable(response.status) else None
        if wait is not None:
            self._settle_failure(delivery, response, State.PENDING, now, next_at=now + wait)
            self._log(delivery, "retry", response.status, f"{response.error}; next attempt in {wait:g}s")
        elif spec.dead_letter_sink is not None:
            self._settle_failure(delivery, response, State.PENDING, now, to_dead_letter=url)
            self._log(delivery, "to dead-letter sink", response.status, response.error)
        else:
            self._settle_failure(delivery, response, State.DEAD, now)
            self._log(delivery, "dead (no dead-letter sink)", response.status, response.error, error=True)

    def _to_dead_letter(self, delivery: Delivery, trigger: Trigger, session: requests.Session) -> None:
        spec = self.topology.delivery_for(trigger)
        plan = RetryPlan.from_spec(spec)
        now = time.time()
        if spec.dead_letter_sink is None:
            self._queue.settle(delivery, state=State.DEAD, now=now, error="dead-letter sink removed from manifests")
            self._log(delivery, "dead", None, "dead-letter sink removed from the manifests", error=True)
            return
        extensions = error_extensions(delivery.error_dest or "", delivery.error_code, delivery.error_body)
        _, response = self._send(session, spec.dead_letter_sink, delivery.record, plan.timeout, extra=extensions)
        now = time.time()
        if response.ok:  # the sink's answer is not a reply: its body is ignored
            self._queue.settle(delivery, state=State.DEAD_LETTERED, now=now, status=response.status)
            self._log(delivery, "dead-lettered", response.status, f"original status {delivery.error_code}")
            return
        wait = plan.wait_after(delivery.dls_attempts + 1) if is_retryable(response.status) else None
        if wait is not None:
            self._settle_failure(delivery, response, State.PENDING, now, next_at=now + wait)
            self._log(delivery, "dead-letter retry", response.status, f"{response.error}; next in {wait:g}s")
        else:
            self._settle_failure(delivery, response, State.DEAD, now)
            self._log(delivery, "dead (dead-letter sink failed)", response.status, response.error, error=True)

    def _settle_failure(
        self,
        delivery: Delivery,
        response: _Response,
        state: State,
        now: float,
        *,
        next_at: float | None = None,
        to_dead_letter: str | None = None,
    ) -> None:
        self._queue.settle(
            delivery,
            state=state,
            now=now,
            status=response.status,
            error=response.error,
            body=response.body,
            next_at=next_at,
            to_dead_letter=to_dead_letter,
        )
        if next_at is not None:
            # The idle workers of this Trigger may sleep past this retry: let them look again.
            self._dispatchers[delivery.trigger].wake()

    def _send(
        self,
        session: requests.Session,
        destination: Destination,
        record: Record,
        timeout: float,
        *,
        reply: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[str, _Response]:
        try:
            url = self._resolve(destination)
        except Exception as exc:  # e.g. the function server is not running: retry like a transport error
            return str(destination), _Response(None, f"cannot resolve {destination}: {exc}")
        event = {k: v for k, v in record.items() if k != TTL_EXTENSION}  # broker-internal
        headers, body = to_binary(event, extra)
        if reply:
            headers["Prefer"] = "reply"
        headers.update(self._sender_headers)
        for attempt in (1, 2):
            try:
                resp = session.post(url, data=body, headers=headers, timeout=timeout)
                break
            except requests.RequestException as exc:
                # A kept-alive connection the server closed meanwhile (gunicorn keeps idle ones 2 s) fails on
                # its next use: sent once more on a new connection, as the sink publisher does. Not a timeout.
                dropped = isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout)
                if not (dropped and attempt == 1):
                    return url, _Response(None, f"{type(exc).__name__}: {exc}")
        error = None if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"
        return url, _Response(resp.status_code, error, resp.content, dict(resp.headers))

    def _reply_of(self, delivery: Delivery, response: _Response) -> tuple[NewEvent | None, str | None]:
        """(reply to store or None, failure description or None) for a 2xx response."""
        if response.status == 202:
            if response.body:
                log.warning(
                    "event %s trigger %s: 202 with a body; ignored here, but a Knative broker "
                    "may count it as a failure: answer 202 with an empty body",
                    delivery.event_id,
                    delivery.trigger,
                )
            return None, None
        if not is_cloudevent_message(response.headers):
            if not response.body:
                return None, None
            return None, (
                "received a non-empty response not recognized as CloudEvent; "
                "the response must be empty or a valid CloudEvent"
            )
        try:
            record = parse_http(response.headers, response.body)
        except InvalidEvent as exc:
            return None, f"invalid CloudEvent in response: {exc}"
        record[TTL_EXTENSION] = delivery.record.get(TTL_EXTENSION, MAX_TTL)  # reply inherits the TTL
        if not self._stamp_ttl(record):
            return None, None
        return NewEvent(record, delivery.broker, self._matching(delivery.broker, record)), None

    def _log(
        self, delivery: Delivery, outcome: str, status: int | None, detail: str | None, *, error: bool = False
    ) -> None:
        attempt = delivery.attempts + 1 if delivery.target is Target.SUBSCRIBER else delivery.dls_attempts + 1
        log.log(
            logging.ERROR if error else logging.INFO,
            "event %s trigger %s %s attempt %d: status %s -> %s%s",
            delivery.event_id,
            delivery.trigger,
            delivery.target.value,
            attempt,
            status if status is not None else "none",
            outcome,
            f" ({detail})" if detail else "",
        )


class _BodyTooLarge(ValueError):
    pass


class _IngressServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], broker: LocalBroker) -> None:
        self.broker = broker
        super().__init__(address, _IngressHandler)


class _IngressHandler(BaseHTTPRequestHandler):
    server: _IngressServer
    server_version = "refsys-local-broker"

    def do_POST(self) -> None:
        broker = self.server.broker
        name = broker._broker_for_path(urlsplit(self.path).path)
        if name is None:
            self._answer(404, f"no broker at {self.path}")
            return
        if not broker._publisher_known(self.headers.get("Authorization")):
            self._answer(401, "publish with the platform's event secret: Authorization: Bearer <secret>",
                         {"WWW-Authenticate": 'Bearer realm="events"'})  # fmt: skip
            return
        try:
            body = self._read_body()
        except _BodyTooLarge as exc:
            self._answer(413, str(exc))
            return
        except ValueError as exc:
            self._answer(400, str(exc))
            return
        try:
            record = parse_http(dict(self.headers.items()), body)
        except InvalidEvent as exc:
            self._answer(400, str(exc))
            return
        try:
            broker.ingest(record, name)
        except QueueClosed:
            self._answer(503, "broker is stopping")
            return
        self._answer(202, "")

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._answer(200, "ok")
        elif path == "/metrics":  # backlog and retries per Trigger, as Prometheus reads them
            self._metrics()
        else:
            self._not_allowed()

    def _metrics(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        from shared.observability.metrics import broker_collector

        registry = CollectorRegistry()
        registry.register(broker_collector(self.server.broker.stats))
        body = generate_latest(registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self) -> None:
        # CloudEvents webhook validation handshake, as the Knative ingress answers it.
        self.send_response(200)
        self.send_header("Allow", "POST, OPTIONS")
        self.send_header("WebHook-Allowed-Origin", self.headers.get("WebHook-Request-Origin", "*"))
        self.send_header("WebHook-Allowed-Rate", "*")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _not_allowed(self) -> None:
        self._answer(405, "only POST is allowed", {"Allow": "POST, OPTIONS"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_allowed

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise ValueError("invalid Content-Length") from exc
        if length > MAX_BODY_BYTES:
            raise _BodyTooLarge(f"event larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                chunk = int(line, 16)
            except ValueError as exc:
                raise ValueError("invalid chunked encoding") from exc
            if chunk == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            size += chunk
            if size > MAX_BODY_BYTES:
                raise _BodyTooLarge(f"event larger than {MAX_BODY_BYTES} bytes")
            chunks.append(self.rfile.read(chunk))
            self.rfile.readline(16)  # CRLF after the chunk

    def _answer(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        payload = (message + "\n").encode() if message else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if payload:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ingress %s: " + format, self.address_string(), *args)
