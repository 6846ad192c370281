"""What every response and every form of the site gets: security headers, CSRF tokens, rate limits, and an
access log that never shows a token.

Headers (:class:`SecurityHeaders`, a plain ASGI middleware): a strict Content-Security-Policy (only this
site's scripts, styles, images and media; no inline code; ``frame-ancestors 'none'``; ``form-action`` this
site plus the payment portal), ``Referrer-Policy: no-referrer`` (a page URL is a capability: it must never
leak in a Referer), ``nosniff``, ``noindex``, HSTS on https, and ``Cache-Control: no-store`` on everything
but the static assets, so no shared cache ever keeps a personal page.

CSRF (signed per-session token): the first page view sets a random, HttpOnly, SameSite=Lax cookie; every
form carries HMAC(key, cookie | link digest), so a form is only valid in the browser that loaded it and for
that link. The key is derived from the payment-link secret (same on every machine that verifies links).
RFC 8058 one-click unsubscribe is exempt by design: mail providers POST it without any cookie.

Rate limits (:class:`RateLimiter`): token buckets per client IP, per link and for failed links per IP, kept
in this process (bounded LRU). With several processes each keeps its own buckets, so the effective limit is
multiplied by the number of workers; a shared limit across machines needs a shared counter (Redis
``INCR`` with expiry per key and window), behind the same ``allow(key)`` call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("comms.web")

_TOKEN_PATH = re.compile(r"^/(p|u)/([^/?#]+)")
CSRF_COOKIE = "comms_csrf"
CSRF_FIELD = "csrf"


def token_tag(token: str) -> str:
    """What logs show instead of a token: the first 10 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:10]


def redact_path(path: str) -> str:
    """``/p/<token>/pay`` -> ``/p/{3f2a9c01de}/pay``: safe to log."""
    return _TOKEN_PATH.sub(lambda m: f"/{m.group(1)}/{{{token_tag(m.group(2))}}}", path)


def masked_ip(ip: str) -> str:
    """An address as logs may show it (an IP address is personal data): IPv4 /24, IPv6 /48."""
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::"
    parts = ip.split(".")
    return ".".join(parts[:3] + ["0"]) if len(parts) == 4 else "-"


def derive_key(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=b"comms.web", info=purpose).derive(secret)


class Csrf:
    """Signed per-session CSRF tokens bound to one link."""

    def __init__(self, key: bytes, *, secure: bool):
        self.key = key
        self.secure = secure

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(18)

    def token(self, session: str, link_token: str) -> str:
        mac = hmac.new(self.key, f"{session}|{link_token}".encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode("ascii")

    def valid(self, session: str | None, link_token: str, submitted: str | None) -> bool:
        if not session or not submitted or len(session) > 64 or len(submitted) > 64:
            return False
        return hmac.compare_digest(self.token(session, link_token), submitted)

    def cookie_header(self, session: str) -> str:
        secure = "; Secure" if self.secure else ""
        return f"{CSRF_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400{secure}"


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up, per key; the oldest keys are forgotten first."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000):
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, cost: float = 1.0, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            ok = tokens >= cost
            self._buckets[key] = (tokens - cost if ok else tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return ok

    def exhausted(self, key: str, now: float | None = None) -> bool:
        """True while ``key`` has less than one token left (without spending any)."""
        if self.rate <= 0:
            return False
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate) < 1


class RateLimiter:
    """The site's limits: per client IP, per link, and failed links per IP (guessing). 0 disables one."""

    def __init__(self, *, ip_rate: float = 20, ip_burst: float = 120, token_rate: float = 5,
                 token_burst: float = 40, failure_rate: float = 0.2, failure_burst: float = 20):
        self.ip = TokenBucket(ip_rate, ip_burst)
        self.token = TokenBucket(token_rate, token_burst)
        self.failures = TokenBucket(failure_rate, failure_burst)

    @classmethod
    def from_settings(cls, settings) -> "RateLimiter":
        get = lambda name, default: settings.get(name, default=default, cast=float)  # noqa: E731
        return cls(ip_rate=get("web_rate_ip", 20), ip_burst=get("web_burst_ip", 120),
                   token_rate=get("web_rate_link", 5), token_burst=get("web_burst_link", 40),
                   failure_rate=get("web_rate_bad_link", 0.2), failure_burst=get("web_burst_bad_link", 20))

    def allow(self, ip: str, token: str | None) -> bool:
        if not self.ip.allow(ip) or self.failures.exhausted(ip):
            return False
        return token is None or self.token.allow(token_tag(token))

    def failed(self, ip: str) -> None:
        """Count a forged, expired or revoked link against the client's IP."""
        self.failures.allow(ip)


def csp(form_origins: tuple[str, ...] = ()) -> str:
    forms = " ".join(("'self'",) + tuple(form_origins))
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
            f"font-src 'self'; connect-src 'self'; form-action {forms}; frame-ancestors 'none'; "
            "base-uri 'none'; manifest-src 'none'")


class SecurityHeaders:
    """ASGI middleware: security headers on every response, ``no-store`` unless the app chose caching,
    and an access log line with the token replaced by its tag."""

    def __init__(self, app, *, form_origins: tuple[str, ...] = (), hsts: bool = False):
        self.app = app
        base = [
            (b"content-security-policy", csp(form_origins).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"x-robots-tag", b"noindex, nofollow"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), interest-cohort=()"),
        ]
        if hsts:
            base.append((b"strict-transport-security", b"max-age=31536000"))
        self.base = base

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [0]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in self.base if h[0] not in names)
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store, private"))
                    headers.append((b"pragma", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                log.info("%s %s %s %d %.1fms", masked_ip(client[0]), scope["method"], redact_path(scope["path"]),
                         status[0], (time.perf_counter() - start) * 1000)


__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "Csrf", "RateLimiter", "SecurityHeaders", "TokenBucket", "csp",
           "derive_key", "masked_ip", "redact_path", "token_tag"]
