"""Revoking payment links: one link, or every link a customer has been sent so far.

The table ``link_revocations`` holds no token and no customer id in clear:

- a single link is stored as ``token_digest`` = SHA-256 (hex) of the token (tokens are canonical, see
  ``links``, so one link has exactly one digest);
- a customer is stored as ``customer_ref`` = HMAC-SHA256 (hex) of the customer id under a key derived
  from a link secret, one row per configured key, so the revocation still matches after keys rotate.

A customer revocation kills the links issued up to that moment (``issued_at <= created_at``, to the second,
so a link signed in the same second is revoked too: it fails closed). Links of a later campaign open again:
keeping a customer from being contacted at all is the contact policy's job, not the link's.

Both checks are equality lookups on indexed columns, done in one statement.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import exists, insert, or_, select

from ..errors import InputError, LinkError
from ..store import Store
from ..store.schema import link_revocations as t
from .links import LinkClaims, LinkSigner, extract_token

MAX_REASON = 200


def token_digest(token: str) -> str:
    return hashlib.sha256(extract_token(token).encode("utf-8")).hexdigest()


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InputError("a revocation needs a reason")
    if len(reason) > MAX_REASON:
        raise InputError(f"the reason is {len(reason)} characters, at most {MAX_REASON} are kept")
    return reason


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(timezone.utc)


def revoke_token(store: Store, token: str, reason: str, *, now: datetime | None = None) -> None:
    """Revoke one link (a token or a pasted URL). Other links of the same customer keep working."""
    with store.begin() as conn:
        conn.execute(insert(t).values(token_digest=token_digest(token), customer_ref=None,
                                      created_at=_now(now), reason=_reason(reason)))


def revoke_customer(store: Store, signer: LinkSigner, customer_id: str, reason: str, *,
                    now: datetime | None = None) -> int:
    """Revoke every link issued to ``customer_id`` until now; returns the rows written (one per key)."""
    reason, at = _reason(reason), _now(now)
    rows = [{"token_digest": None, "customer_ref": ref, "created_at": at, "reason": reason}
            for ref in signer.customer_refs(customer_id)]
    with store.begin() as conn:
        conn.execute(insert(t), rows)
    return len(rows)


def is_revoked(store: Store, signer: LinkSigner, claims: LinkClaims, token: str) -> bool:
    """True if this token, or its customer as of the token's issue time, has been revoked."""
    by_token = exists().where(t.c.token_digest == token_digest(token))
    by_customer = exists().where(t.c.customer_ref.in_(signer.customer_refs(claims.customer_id)),
                                 t.c.created_at >= claims.issued_at)
    with store.begin() as conn:
        return bool(conn.execute(select(or_(by_token, by_customer))).scalar())


def verify_link(store: Store, signer: LinkSigner, token: str, now: datetime | float | None = None
                ) -> LinkClaims:
    """Everything a page needs before answering: authentic, unexpired, not revoked; else LinkError."""
    return signer.verify(extract_token(token), now, store=store)


__all__ = ["LinkError", "is_revoked", "revoke_customer", "revoke_token", "token_digest", "verify_link"]
