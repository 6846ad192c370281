"""Payment providers: where a checkout sends the customer, and how the provider's answer is trusted.

A provider has a name, says whether it is a test, names the origins the browser is sent to (for the page's
Content-Security-Policy ``form-action``), and implements two steps:

    start(checkout, page_url=..., callback_url=...) -> URL      where to send the customer (303 redirect)
    parse_callback(params, now=...) -> CallbackResult          a verified answer, or PaymentError

Built in (setting ``payment_provider``):

``demo``      (default) a hosted checkout page on this site, clearly marked as test mode; paying there
              records a payment. No money moves.
``redirect``  the creditor's own payment portal (``payment_portal_url``). The customer is sent there with
              signed parameters (``ref`` = our opaque checkout id, ``amount``, ``currency``, ``return_url``,
              ``callback_url``, ``ts``, ``sig``); the portal answers with a signed callback (server to server,
              ``POST /hooks/payments/redirect``) and/or signs the browser's return
              (``GET /p/<token>/pay/return``) with ``ref``, ``txn``, ``amount``, ``currency``, ``status``,
              ``ts``. ``sig`` = hex HMAC-SHA256 under ``payment_redirect_secret`` of the other parameters as
              ``key=value`` lines sorted by key, joined by ``\\n``. Nothing personal travels: no name, no
              customer id, no e-mail.

Recording is the caller's job (:func:`comms.payments.checkout.record_payment`), which is idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Mapping, Protocol
from urllib.parse import urlencode, urlsplit

from ..config import Settings
from ..errors import ConfigError
from .checkout import Checkout, PaymentError

CALLBACK_MAX_AGE = 3600  # seconds a signed callback stays acceptable
STATUSES = ("paid", "failed", "cancelled")


@dataclass(frozen=True)
class CallbackResult:
    checkout_id: str
    provider_ref: str
    amount: Decimal
    currency: str
    status: str  # paid | failed | cancelled

    @property
    def paid(self) -> bool:
        return self.status == "paid"


class PaymentProvider(Protocol):
    name: str
    test_mode: bool
    form_origins: tuple[str, ...]

    def start(self, checkout: Checkout, *, page_url: str, callback_url: str) -> str: ...

    def parse_callback(self, params: Mapping[str, str], *, now: float | None = None) -> CallbackResult: ...


class DemoProvider:
    """A test-mode checkout hosted here: the page at ``<page>/checkout/<id>`` records the payment."""

    name = "demo"
    test_mode = True
    form_origins: tuple[str, ...] = ()

    def start(self, checkout: Checkout, *, page_url: str, callback_url: str) -> str:
        """The checkout page on the host the customer is already on (a path, not a URL)."""
        return f"{urlsplit(page_url).path}/checkout/{checkout.id}"

    def complete(self, checkout: Checkout) -> CallbackResult:
        """What the demo checkout's Pay button confirms: exactly the checkout, under its own reference."""
        return CallbackResult(checkout.id, f"demo-{checkout.id}", checkout.amount, checkout.currency, "paid")

    def parse_callback(self, params: Mapping[str, str], *, now: float | None = None) -> CallbackResult:
        raise PaymentError("the demo provider takes no callbacks")


def sign_params(secret: bytes, params: Mapping[str, str]) -> str:
    """hex HMAC-SHA256 of ``key=value`` lines sorted by key (``sig`` itself excluded)."""
    lines = "\n".join(f"{k}={params[k]}" for k in sorted(params) if k != "sig")
    return hmac.new(secret, lines.encode("utf-8"), hashlib.sha256).hexdigest()


class RedirectProvider:
    """The creditor's own payment portal, reached and answered with HMAC-signed parameters."""

    name = "redirect"
    test_mode = False

    def __init__(self, portal_url: str, secret: bytes, *, max_age: int = CALLBACK_MAX_AGE):
        parts = urlsplit(portal_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigError("COMMS_PAYMENT_PORTAL_URL", f"must be an http(s) URL, got {portal_url!r}")
        if len(secret) < 16:
            raise ConfigError("COMMS_PAYMENT_REDIRECT_SECRET", "must be at least 16 bytes")
        self.portal_url = portal_url
        self.secret = secret
        self.max_age = max_age
        self.form_origins = (f"{parts.scheme}://{parts.netloc}",)

    def start(self, checkout: Checkout, *, page_url: str, callback_url: str) -> str:
        params = {"ref": checkout.id, "amount": str(checkout.amount), "currency": checkout.currency,
                  "return_url": f"{page_url}/pay/return", "callback_url": callback_url,
                  "ts": str(int(time.time()))}
        params["sig"] = sign_params(self.secret, params)
        sep = "&" if urlsplit(self.portal_url).query else "?"
        return f"{self.portal_url}{sep}{urlencode(params)}"

    def parse_callback(self, params: Mapping[str, str], *, now: float | None = None) -> CallbackResult:
        params = {k: str(v) for k, v in params.items()}
        missing = [k for k in ("ref", "txn", "amount", "currency", "status", "ts", "sig") if not params.get(k)]
        if missing:
            raise PaymentError(f"payment callback without {', '.join(missing)}")
        if not hmac.compare_digest(sign_params(self.secret, params), params["sig"]):
            raise PaymentError("payment callback signature does not match")
        try:
            age = (time.time() if now is None else now) - int(params["ts"])
            amount = Decimal(params["amount"])
        except (ValueError, InvalidOperation):
            raise PaymentError("payment callback with a malformed ts or amount") from None
        if abs(age) > self.max_age:
            raise PaymentError(f"payment callback is stale ({int(age)} s old)")
        if params["status"] not in STATUSES:
            raise PaymentError(f"payment callback with unknown status {params['status'][:20]!r}")
        return CallbackResult(params["ref"], params["txn"][:100], amount, params["currency"], params["status"])


def provider_from_settings(settings: Settings) -> PaymentProvider:
    """The configured provider: ``payment_provider`` = demo (default) | redirect."""
    name = str(settings.get("payment_provider", default="demo")).strip().lower()
    if name == "demo":
        return DemoProvider()
    if name == "redirect":
        url = settings.get("payment_portal_url")
        secret = str(settings.get("payment_redirect_secret")).encode("utf-8")
        return RedirectProvider(url, secret)
    raise ConfigError("COMMS_PAYMENT_PROVIDER", f"unknown provider {name!r} (demo or redirect)")


__all__ = ["CallbackResult", "DemoProvider", "PaymentProvider", "RedirectProvider", "provider_from_settings",
           "sign_params"]
