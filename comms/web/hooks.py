"""Webhooks: SendGrid's event webhook and the payment portal's signed callback.

``POST /hooks/sendgrid``: SendGrid signs each batch with ECDSA (P-256, SHA-256) over the timestamp header
followed by the raw body; the public key is the setting ``sendgrid_webhook_public_key`` (base64 DER as the
SendGrid console shows it, or PEM). Without a key, or with a bad signature, or a timestamp more than
``sendgrid_webhook_max_age`` seconds (300) away from now, the batch is refused (403) and nothing is read.
Events are stored once (``dedupe_key`` = ``sg:<sg_event_id>``; SendGrid retries for 24 h) and matched to our
message by the custom argument ``comms_message_id`` (plus ``comms_campaign``, ``comms_customer``,
``comms_channel``, ``comms_variant`` when the sender set them). Nothing else of the event is kept: not the
address, not the clicked URL (it would carry a token), not the bounce text. An unsubscribe or spam report
opts that address out of e-mail.

``POST /hooks/payments/redirect``: the creditor's portal confirms a payment (see
:mod:`comms.payments.providers`); recorded once, whatever the number of retries.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import datetime, timezone
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ..errors import ConfigError
from ..events import EMAIL_KINDS, make_event, write_events
from ..payments.checkout import PaymentError, get_checkout, record_payment
from ..payments.preferences import opt_out_on
from .responses import client_ip, site_of

log = logging.getLogger("comms.web")
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
OPT_OUT_EVENTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})


@lru_cache(maxsize=4)
def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER (as shown in the console) or PEM."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, TypeError) as exc:
        raise ConfigError("COMMS_SENDGRID_WEBHOOK_PUBLIC_KEY", f"not an EC public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("COMMS_SENDGRID_WEBHOOK_PUBLIC_KEY", "not an EC public key")
    return key


def verify_sendgrid(key: ec.EllipticCurvePublicKey, signature: str, timestamp: str, body: bytes, *,
                    max_age: int = 300, now: float | None = None) -> bool:
    """True when ``signature`` signs timestamp + body and the timestamp is fresh."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
        sig = base64.b64decode(signature, validate=True)
    except (ValueError, TypeError):
        return False
    if abs(age) > max_age:
        return False
    try:
        key.verify(sig, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _short(value, limit: int) -> str | None:
    return str(value)[:limit] if isinstance(value, (str, int)) and str(value) else None


def _row(ev: dict) -> dict | None:
    kind = f"email_{ev.get('event')}"
    sg_id = _short(ev.get("sg_event_id"), 100)
    if kind not in EMAIL_KINDS or sg_id is None:
        return None
    try:
        when = datetime.fromtimestamp(int(ev.get("timestamp")), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        when = datetime.now(timezone.utc)
    channel = ev.get("comms_channel") if ev.get("comms_channel") in ("email",) else "email"
    data = {"bounce_type": _short(ev.get("type"), 20)} if kind == "email_bounce" and ev.get("type") else {}
    return make_event(kind, campaign=_short(ev.get("comms_campaign"), 64), channel=channel,
                      variant=_short(ev.get("comms_variant"), 64), customer_id=_short(ev.get("comms_customer"), 64),
                      message_id=_short(ev.get("comms_message_id"), 100), dedupe_key=f"sg:{sg_id}",
                      occurred_at=when, data=data)


async def sendgrid(request: Request) -> Response:
    site = site_of(request)
    if not site.limiter.ip.allow(client_ip(request)):
        return PlainTextResponse("slow down", status_code=429)
    key_text = site.settings.get("sendgrid_webhook_public_key", default=None)
    if not key_text:
        log.warning("SendGrid webhook refused: no sendgrid_webhook_public_key configured")
        return PlainTextResponse("webhook not configured", status_code=403)
    body = await request.body()
    max_age = site.settings.get("sendgrid_webhook_max_age", default=300, cast=int)
    if not verify_sendgrid(load_public_key(key_text), request.headers.get(SIGNATURE_HEADER, ""),
                           request.headers.get(TIMESTAMP_HEADER, ""), body, max_age=max_age):
        log.warning("SendGrid webhook refused: bad signature or stale timestamp")
        return PlainTextResponse("signature refused", status_code=403)
    try:
        batch = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return PlainTextResponse("not JSON", status_code=400)
    if not isinstance(batch, list):
        return PlainTextResponse("expected a JSON array", status_code=400)
    stored = ignored = duplicates = 0
    with site.store.begin() as conn:
        for ev in batch:
            row = _row(ev) if isinstance(ev, dict) else None
            if row is None:
                ignored += 1
                continue
            if write_events(conn, [row]) == 0:
                duplicates += 1
                continue
            stored += 1
            if ev.get("event") in OPT_OUT_EVENTS and isinstance(ev.get("email"), str) and ev["email"].strip():
                opt_out_on(conn, customer_id=row["customer_id"], channel="email", address=ev["email"],
                           source="sendgrid", campaign=row["campaign"], event_channel="email")
    return JSONResponse({"stored": stored, "duplicates": duplicates, "ignored": ignored})


async def payment_callback(request: Request) -> Response:
    """Server-to-server confirmation from the redirect provider (form or JSON body)."""
    site = site_of(request)
    if site.provider.name != request.path_params["provider"] or site.provider.name == "demo":
        return PlainTextResponse("unknown provider", status_code=404)
    if not site.limiter.ip.allow(client_ip(request)):
        return PlainTextResponse("slow down", status_code=429)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            params = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        if not isinstance(params, dict):
            return PlainTextResponse("expected an object", status_code=400)
    else:
        params = dict(await request.form(max_files=0, max_fields=20))
    try:
        result = site.provider.parse_callback(params)
    except PaymentError as exc:
        log.warning("payment callback refused: %s", exc)
        return PlainTextResponse("refused", status_code=403)
    checkout = get_checkout(site.store, result.checkout_id)
    if checkout is None or checkout.provider != site.provider.name:
        return PlainTextResponse("unknown checkout", status_code=404)
    if not result.paid:
        return JSONResponse({"recorded": False, "status": result.status})
    try:
        recorded = record_payment(site.store, checkout, provider_ref=result.provider_ref, amount=result.amount,
                                  currency=result.currency)
    except PaymentError as exc:
        log.warning("payment callback not booked: %s", exc)
        return PlainTextResponse("amount or currency does not match", status_code=409)
    return JSONResponse({"recorded": recorded, "status": "paid"})


__all__ = ["load_public_key", "payment_callback", "sendgrid", "verify_sendgrid"]
