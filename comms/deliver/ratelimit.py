"""A delivery rate limit that holds across every process and machine sending through one provider account.

Celery's ``rate_limit`` is per worker: two workers at 100/s send 200/s. This is one token bucket in the store
that all of them draw from (the SQLite file for the embedded pool, PostgreSQL for workers on many machines):
the bucket holds up to ``burst`` tokens and refills at ``rate`` per second, and every request to the provider
(retries included) takes one. The refill and the take are a single conditional UPDATE, so two takers can
never spend the same token, and the clock is the database's, so machines whose clocks disagree still agree.

A process takes tokens in small grants (a twentieth of a second's worth) to keep the database round trips
few, and lets a grant it has not spent lapse after :data:`GRANT_TTL` seconds: in any interval of ``t`` seconds
at most ``burst + rate * (t + GRANT_TTL)`` requests leave. When a provider answers 429 with a reset time,
:meth:`TokenBucket.hold` empties the bucket for everyone until then.

Settings: ``email_rate`` (requests per second across all workers; unset or 0: no limit) and
``email_burst`` (tokens the bucket holds; default one second's worth). Buckets are named per backend
(``email:sendgrid``), so campaigns running side by side share their provider's limit.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from sqlalchemy import text

from ..config import Settings
from ..errors import ConfigError

GRANT_TTL = 0.2  # seconds a process may sit on tokens it was granted but has not spent
LONGEST_NAP = 0.5  # a waiting taker looks again at least this often (another may have returned nothing, but
# the rate may have been raised, or a hold lifted)

_NOW = {"postgresql": "extract(epoch from clock_timestamp())",
        "sqlite": "((julianday('now') - 2440587.5) * 86400.0)"}
_LEAST = {"postgresql": "LEAST", "sqlite": "MIN"}


class TokenBucket:
    """``take()`` blocks until this process may send one more request. Thread-safe."""

    def __init__(self, store, name: str, rate: float, burst: float | None = None, *,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.store = store
        self.name = name
        self.rate = float(rate)
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self.grant = max(1, min(int(self.burst), int(self.rate / 20)))
        self.sleep = sleep
        self._lock = threading.Lock()
        self._spare = 0
        self._spare_until = 0.0
        dialect = store.dialect
        if dialect not in _NOW:
            raise ConfigError("COMMS_DATABASE_URL", f"rate limits need SQLite or PostgreSQL, not {dialect}")
        now, least = _NOW[dialect], _LEAST[dialect]
        level = f"{least}(:burst, tokens + ({now} - updated) * :rate)"
        self._create = text(f"INSERT INTO rate_buckets (name, tokens, updated) VALUES (:name, :burst, {now}) "
                            "ON CONFLICT (name) DO NOTHING")
        self._take = text(f"UPDATE rate_buckets SET tokens = {level} - :n, updated = {now} "
                          f"WHERE name = :name AND {level} >= :n")
        self._level = text(f"SELECT {level} FROM rate_buckets WHERE name = :name")
        self._hold = text(f"UPDATE rate_buckets SET tokens = {least}({level}, -:rate * :seconds), "
                          f"updated = {now} WHERE name = :name")
        with store.begin() as conn:
            conn.execute(self._create, {"name": name, "burst": self.burst})

    def _params(self, **extra) -> dict:
        return {"name": self.name, "rate": self.rate, "burst": self.burst, **extra}

    def take(self) -> None:
        """Wait for one token (spent from this process's grant, or a new grant from the shared bucket)."""
        with self._lock:  # one thread refills; the others queue behind it, as they would for the tokens
            if self._spare and time.monotonic() < self._spare_until:
                self._spare -= 1
                return
            self._spare = 0
            while True:
                with self.store.begin() as conn:
                    if conn.execute(self._take, self._params(n=self.grant)).rowcount == 1:
                        self._spare, self._spare_until = self.grant - 1, time.monotonic() + GRANT_TTL
                        return
                    level = conn.execute(self._level, self._params()).scalar_one()
                self.sleep(min(LONGEST_NAP, max(0.001, (self.grant - float(level)) / self.rate)))

    def hold(self, seconds: float) -> None:
        """The provider asked everyone to stop for ``seconds``: no token for anybody until then."""
        with self._lock:
            self._spare = 0
            with self.store.begin() as conn:
                conn.execute(self._hold, self._params(seconds=max(0.0, float(seconds))))


def bucket_for(settings: Settings, store, backend_name: str) -> TokenBucket | None:
    """The shared bucket configured for a backend (``email_rate``/``email_burst``), or None for no limit."""
    try:
        rate = float(settings.get("email_rate", default=0) or 0)
        burst = settings.get("email_burst", default=None)
        burst = float(burst) if burst not in (None, "") else None
    except ValueError:
        raise ConfigError("COMMS_EMAIL_RATE", "must be a number of messages per second") from None
    if rate < 0 or (burst is not None and burst < 1):
        raise ConfigError("COMMS_EMAIL_RATE", "must be positive, and COMMS_EMAIL_BURST at least 1")
    if rate == 0:
        return None
    return TokenBucket(store, f"email:{backend_name}", rate, burst)
