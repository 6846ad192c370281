"""What every delivery backend shares: the send loop, retries, statuses, errors and connection reuse.

A backend is a template method. :meth:`Backend.send` checks the message's optional features against what
the backend can carry (one it cannot carry raises :class:`UnsupportedFeature`, it is never dropped), then
runs three hooks a provider fills in: ``build_payload`` (the provider's form of the message), ``post`` (one
attempt on the wire) and ``parse_status`` (the provider's answer as a :class:`DeliveryResult`). A deferred
result is retried here, after the wait the provider asked for (HTTP 429 ``X-RateLimit-Reset``) or an
exponential backoff, up to ``max_attempts``; a wait longer than ``max_wait`` is left to the caller, who
gets ``deferred`` with ``retry_after``. :meth:`Backend.send_many` sends with bounded concurrency, each
worker reusing a pooled connection.

Errors (who catches what)::

    ConfigError (comms.errors)   a backend is misconfigured (no API key, refused login): fix, never retry
    DeliveryError(CommsError)    a message cannot be handed over; carries the payload and the response
     └── UnsupportedFeature      the backend cannot carry a feature the message uses (tags, send_at)

A failed send is not an exception: it is a result with status ``failed``/``rejected``/``deferred`` and the
reason, recorded by the caller (the campaign ledger).
"""

from __future__ import annotations

import enum
import queue
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator

from ..errors import CommsError


class DeliveryStatus(str, enum.Enum):
    """The closed set of outcomes of handing one message to a backend."""

    QUEUED = "queued"      # accepted by a provider that delivers later (SendGrid 202)
    SENT = "sent"          # handed over for good (SMTP 250, written to the outbox, kept in memory)
    DEFERRED = "deferred"  # temporary refusal (429, 5xx, SMTP 4xx): try again later
    REJECTED = "rejected"  # the recipient or the content was refused for good (SMTP 5xx)
    FAILED = "failed"      # cannot be sent as it is (4xx from the API, a timeout of unknown outcome)


ACCEPTED = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.SENT})
FEATURES = frozenset({"tags", "send_at"})  # optional features a message may use (RenderedEmail.features)


@dataclass(frozen=True)
class DeliveryResult:
    message_id: str
    status: DeliveryStatus
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    attempts: int = 1
    backend: str = ""

    def __post_init__(self):
        if not isinstance(self.status, DeliveryStatus):
            try:  # the closed set is checked where a status is made
                object.__setattr__(self, "status", DeliveryStatus(self.status))
            except ValueError:
                raise ValueError(f"unknown delivery status {self.status!r}; one of "
                                 f"{', '.join(s.value for s in DeliveryStatus)}") from None

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED


class DeliveryError(CommsError):
    """A message cannot be handed over. Holds what was sent and what came back, for the log."""

    def __init__(self, message: str, *, payload: Any = None, response: Any = None,
                 result: DeliveryResult | None = None):
        self.payload = payload
        self.response = response
        self.result = result
        super().__init__(message)

    def details(self) -> str:
        return f"{self}\n  payload: {str(self.payload)[:500]}\n  response: {str(self.response)[:500]}"


class UnsupportedFeature(DeliveryError):
    def __init__(self, backend: str, feature: str):
        self.backend = backend
        self.feature = feature
        super().__init__(f"the {backend} backend cannot carry {feature!r}: remove it from the message "
                         "or choose a backend that can (COMMS_EMAIL_BACKEND)")


class ConnectionPool:
    """Up to ``size`` open connections, reused last-in first-out; a connection that failed is dropped."""

    def __init__(self, connect: Callable[[], Any], close: Callable[[Any], None], size: int):
        self._connect = connect
        self._close = close
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max(1, size))
        self._all: set = set()
        self._lock = threading.Lock()
        self.opened = 0

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection for one exchange; on an exception it is closed instead of returned."""
        self._slots.acquire()
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
                with self._lock:
                    self._all.add(conn)
                    self.opened += 1
            try:
                yield conn
            except BaseException:
                self.discard(conn)
                raise
            else:
                if conn in self._all:
                    self._idle.put(conn)
        finally:
            self._slots.release()

    def discard(self, conn: Any) -> None:
        with self._lock:
            known = conn in self._all
            self._all.discard(conn)
        if known:
            try:
                self._close(conn)
            except Exception:  # closing a broken connection may fail too
                pass

    def close(self) -> None:
        while True:
            try:
                self.discard(self._idle.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            leftover, self._all = list(self._all), set()
        for conn in leftover:
            try:
                self._close(conn)
            except Exception:
                pass


class Backend:
    """Base of every e-mail backend. Subclasses set ``name`` and ``supported`` and fill in the hooks."""

    name = "base"
    supported: frozenset[str] = frozenset()

    def __init__(self, *, concurrency: int = 8, max_attempts: int = 3, backoff: float = 0.5,
                 max_wait: float = 60.0, sleep: Callable[[float], None] = time.sleep):
        self.concurrency = max(1, int(concurrency))
        self.max_attempts = max(1, int(max_attempts))
        self.backoff = float(backoff)
        self.max_wait = float(max_wait)
        self.sleep = sleep
        self.throttle = None  # a shared rate limit (comms.deliver.ratelimit.TokenBucket): one token per request

    # -- the hooks ---------------------------------------------------------------------------------------

    def build_payload(self, email) -> Any:
        raise NotImplementedError

    def post(self, payload: Any, email) -> Any:
        raise NotImplementedError

    def parse_status(self, email, response: Any) -> DeliveryResult:
        raise NotImplementedError

    def transport_error(self, email, exc: Exception) -> DeliveryResult:
        """A network failure: nothing reached the server (deferred) or the outcome is unknown (failed)."""
        if isinstance(getattr(exc, "reason", None), OSError):  # urllib wraps the socket error
            exc = exc.reason
        if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
            return DeliveryResult(email.message_id, DeliveryStatus.DEFERRED, error=f"cannot connect: {exc}")
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return DeliveryResult(email.message_id, DeliveryStatus.FAILED,
                                  error=f"no answer in time ({exc or 'timeout'}); not retried, it may have "
                                        "been accepted")
        return DeliveryResult(email.message_id, DeliveryStatus.FAILED, error=f"{type(exc).__name__}: {exc}")

    # -- the send loop -----------------------------------------------------------------------------------

    def check_features(self, email) -> None:
        for feature in sorted(email.features - self.supported):
            raise UnsupportedFeature(self.name, feature)

    def send(self, email) -> DeliveryResult:
        """Hand one message over, retrying temporary refusals; the result says what happened."""
        self.check_features(email)
        payload = self.build_payload(email)
        attempt = 0
        while True:
            attempt += 1
            if self.throttle is not None:
                self.throttle.take()
            try:
                result = self.parse_status(email, self.post(payload, email))
            except (OSError, TimeoutError) as exc:
                result = self.transport_error(email, exc)
            if self.throttle is not None and result.retry_after:  # the provider's limit: everyone waits
                self.throttle.hold(result.retry_after)
            if result.status is DeliveryStatus.DEFERRED and attempt < self.max_attempts:
                wait = result.retry_after if result.retry_after is not None \
                    else self.backoff * 2 ** (attempt - 1)
                if wait <= self.max_wait:
                    self.sleep(max(0.0, wait))
                    continue
            return replace(result, attempts=attempt, backend=self.name)

    def send_many(self, emails: Iterable, *, concurrency: int | None = None) -> list[DeliveryResult]:
        """Send many messages with at most ``concurrency`` in flight; results in the input order.

        Features are checked for every message before the first one is sent.
        """
        emails = list(emails)
        for email in emails:
            self.check_features(email)
        workers = min(concurrency or self.concurrency, len(emails)) or 1
        if workers == 1:
            return [self.send(e) for e in emails]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"send-{self.name}") as pool:
            return list(pool.map(self.send, emails))

    def close(self) -> None:
        """Close pooled connections (safe to call twice)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
