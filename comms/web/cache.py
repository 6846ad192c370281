"""A bounded in-process cache of rendered personal pages, for repeat views.

The key holds everything the page shows: the token (so campaign, customer and issue date), today's date,
the snapshot and segment, the customer's state as just read from the store (its fingerprint: payments,
plan, promise, dispute, opt-outs), the attribution, which files exist (video, letter) and the templates'
version. The state is read on every request before the cache is asked, so a payment, a revocation or a new
import is never hidden by it. The per-browser CSRF token is not part of a cached page: a per-process
placeholder is replaced on the way out. Memory is bounded in bytes; entries also expire.

A page is kept from its second view on (:class:`SeenBefore`): most links are opened once, and keeping every
first view would cost each of them a copy, memory, evictions and garbage-collector time for a page nobody
asks for again. The first view only leaves the hash of its key in a bounded set.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict


class SeenBefore:
    """Whether a key was offered before: the hashes of keys offered once, in a set emptied when it holds
    ``max_keys`` (plain ints: nothing for the garbage collector to walk). A hash collision counts as seen.
    Callers hold their own lock."""

    def __init__(self, max_keys: int = 200_000):
        self.max_keys = max_keys
        self._hashes: set[int] = set()

    def __call__(self, key: tuple) -> bool:
        digest = hash(key)
        if digest in self._hashes:
            return True
        if len(self._hashes) >= self.max_keys:
            self._hashes.clear()
        self._hashes.add(digest)
        return False

    def clear(self) -> None:
        self._hashes.clear()


class PageCache:
    def __init__(self, max_bytes: int = 64 * 1024 * 1024, ttl: float = 600.0):
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.placeholder = "csrf" + secrets.token_hex(16)
        self._items: OrderedDict[tuple, tuple[float, str]] = OrderedDict()
        self._seen = SeenBefore()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> str | None:
        now = time.monotonic()
        with self._lock:
            found = self._items.get(key)
            if found is None or now - found[0] > self.ttl:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[1]

    def admit(self, key: tuple) -> bool:
        """True when the page of ``key`` is worth keeping, as it was asked for before; a first view is only
        remembered."""
        if self.max_bytes <= 0:
            return False
        with self._lock:
            return self._seen(key)

    def put(self, key: tuple, html: str) -> None:
        if self.max_bytes <= 0 or len(html) > self.max_bytes // 8:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._items[key] = (time.monotonic(), html)
            self._bytes += len(html)
            while self._bytes > self.max_bytes and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._seen.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)
