"""Contact preferences: opt-outs per customer and channel, or per address (RFC 8058 one-click, the page's
contact choices, SendGrid unsubscribes and spam reports).

An address is never stored in clear: ``address_digest`` is a SHA-256 of the normalized address, so a later
send to the same address can be matched (whatever customer it belongs to) without the table listing them.
Opting out is idempotent; opting back in marks the opt-out withdrawn (the history stays for the audit).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import Connection, and_, insert, or_, select, update

from ..errors import InputError
from ..events import make_event, write_events
from ..store import Store
from ..store.schema import contact_opt_outs as t

OPT_OUT_CHANNELS = ("email", "letter", "all")
SOURCES = ("page", "one-click", "sendgrid", "operator")


def address_digest(address: str) -> str:
    """The digest an address is stored and matched under (trimmed, lower-cased)."""
    normalized = (address or "").strip().lower()
    if not normalized:
        raise InputError("an opt-out by address needs an address")
    return hashlib.sha256(f"comms-address v1\x1f{normalized}".encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _check(channel: str, source: str) -> None:
    if channel not in OPT_OUT_CHANNELS:
        raise InputError(f"unknown opt-out channel {channel!r} (known: {', '.join(OPT_OUT_CHANNELS)})")
    if source not in SOURCES:
        raise InputError(f"unknown opt-out source {source!r}")


def _active(channel: str, customer_id: str | None, digest: str | None):
    """An opt-out already in force: of that address (whoever it belongs to), else of the customer's channel."""
    if digest:
        return and_(t.c.channel == channel, t.c.withdrawn_at.is_(None), t.c.address_digest == digest)
    return and_(t.c.channel == channel, t.c.withdrawn_at.is_(None), t.c.address_digest.is_(None),
                t.c.customer_id == customer_id)


def opt_out_on(conn: Connection, *, customer_id: str | None, channel: str, address: str | None = None,
               source: str, campaign: str | None = None, variant: str | None = None,
               event_channel: str | None = "page") -> bool:
    """Record an opt-out on an open connection (with its ``opted_out`` event); False if already in place."""
    _check(channel, source)
    digest = address_digest(address) if address else None
    if customer_id is None and digest is None:
        raise InputError("an opt-out needs a customer or an address")
    if conn.execute(select(t.c.id).where(_active(channel, customer_id, digest)).limit(1)).first():
        return False
    now = _now()
    conn.execute(insert(t).values(created_at=now, customer_id=customer_id, channel=channel,
                                  address_digest=digest, source=source, campaign=campaign))
    write_events(conn, [make_event("opted_out", campaign=campaign, channel=event_channel, variant=variant,
                                   customer_id=customer_id, occurred_at=now,
                                   data={"from": channel, "by_address": digest is not None, "source": source})])
    return True


def opt_out(store: Store, **kwargs) -> bool:
    """Record an opt-out (see :func:`opt_out_on`) in its own transaction."""
    with store.begin() as conn:
        return opt_out_on(conn, **kwargs)


def opt_in(store: Store, *, customer_id: str, channel: str, address: str | None = None) -> int:
    """Withdraw the customer's opt-outs of a channel (and of that address); returns the rows withdrawn."""
    if channel not in OPT_OUT_CHANNELS:
        raise InputError(f"unknown opt-out channel {channel!r}")
    match = [t.c.customer_id == customer_id]
    if address:
        match = [or_(t.c.customer_id == customer_id, t.c.address_digest == address_digest(address))]
    with store.begin() as conn:
        return conn.execute(update(t).where(t.c.channel == channel, t.c.withdrawn_at.is_(None), *match)
                            .values(withdrawn_at=_now())).rowcount


def set_preferences(store: Store, *, customer_id: str, email: str | None, wants: dict[str, bool],
                    campaign: str | None, variant: str | None = None) -> list[str]:
    """Apply the page's contact choices ({"email": False, "letter": True}); returns what changed.

    E-mail is opted out per address (the one we write to) when the customer has one, else as a channel.
    """
    changed: list[str] = []
    for channel, wanted in wants.items():
        address = email if channel == "email" and email else None
        if wanted:
            if opt_in(store, customer_id=customer_id, channel=channel, address=address):
                changed.append(f"{channel}+")
        elif opt_out(store, customer_id=customer_id, channel=channel, address=address, source="page",
                     campaign=campaign, variant=variant):
            changed.append(f"{channel}-")
    return changed


__all__ = ["OPT_OUT_CHANNELS", "address_digest", "opt_in", "opt_out", "opt_out_on", "set_preferences"]
