"""Where a customer stands after answering: payments, open plan, promise or dispute, opt-outs; and what that
means for reminders.

The campaign layer asks :func:`contact_blockers` (or :func:`contact_blockers_many` for a batch) before it
sends anything; an empty list means go ahead. Reasons are short, stable English strings for the ledger:

    "paid"                                   a payment came in (since ``since``; default: since the
                                             customer's data was last imported, i.e. not yet in the CRM)
    "instalment plan until 2027-05-29"       an open plan, until its last instalment
    "promise to pay until 2026-12-01"        an open promise, until its date (then reminders resume)
    "dispute open"                           until an operator resolves it
    "opted out of email"                     the customer's channel, or ``... at this address``
    "opted out of all contact"

Opt-outs only concern the channels that reach out (email, letter); ``page`` and ``video`` are reached
through them, so for those only payments and arrangements count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable

from sqlalchemy import Connection, bindparam, select

from ..store import Store, as_utc
from ..store.schema import (arrangements as at, contact_opt_outs as ot, customers as ct, payments as pt,
                            snapshots as st)
from .preferences import address_digest

CHUNK = 5_000


@dataclass(frozen=True)
class PaymentRecord:
    created_at: datetime
    amount: Decimal
    waived: Decimal
    currency: str
    provider: str
    campaign: str


@dataclass(frozen=True)
class Arrangement:
    id: int
    kind: str
    created_at: datetime
    campaign: str
    months: int | None
    amount: Decimal | None
    currency: str | None
    until: date | None
    reason: str | None
    schedule: tuple[tuple[date, Decimal], ...] = ()


@dataclass(frozen=True)
class OptOut:
    channel: str
    address_digest: str | None
    created_at: datetime


@dataclass(frozen=True)
class CustomerState:
    """What the store knows about one customer beyond their imported data."""

    customer_id: str
    snapshot_id: int | None = None
    snapshot_created_at: datetime | None = None
    payments: tuple[PaymentRecord, ...] = ()
    plan: Arrangement | None = None
    promise: Arrangement | None = None
    dispute: Arrangement | None = None
    opt_outs: tuple[OptOut, ...] = field(default=())

    def paid_since(self, when: datetime | None) -> tuple[Decimal, Decimal]:
        """(paid, waived) by payments recorded after ``when`` (all when None)."""
        rows = [p for p in self.payments if when is None or as_utc(p.created_at) > as_utc(when)]
        return sum((p.amount for p in rows), Decimal(0)), sum((p.waived for p in rows), Decimal(0))

    def opted_out(self, channel: str, address: str | None = None) -> bool:
        digest = address_digest(address) if address else None
        return any(o.channel in (channel, "all") and (o.address_digest is None or o.address_digest == digest
                                                     or digest is None) for o in self.opt_outs)

    @property
    def fingerprint(self) -> tuple:
        """Changes whenever anything shown on the page changes (a cache key part)."""
        return (len(self.payments), self.payments[-1].created_at if self.payments else None,
                self.plan and self.plan.id, self.promise and self.promise.id, self.dispute and self.dispute.id,
                tuple((o.channel, o.address_digest) for o in self.opt_outs))


def _arrangement(m) -> Arrangement:
    schedule = tuple((date.fromisoformat(d), Decimal(a)) for d, a in (m["schedule"] or ()))
    return Arrangement(id=m["id"], kind=m["kind"], created_at=m["created_at"], campaign=m["campaign"],
                       months=m["months"], amount=None if m["amount"] is None else Decimal(m["amount"]),
                       currency=m["currency"], until=m["until"], reason=m["reason"], schedule=schedule)


_PAY_COLS = (pt.c.customer_id, pt.c.created_at, pt.c.amount, pt.c.waived, pt.c.currency, pt.c.provider,
             pt.c.campaign)
_OUT_COLS = (ot.c.customer_id, ot.c.channel, ot.c.address_digest, ot.c.created_at)
_SNAP_COLS = (ct.c.customer_id, ct.c.snapshot_id, st.c.created_at)
# One customer (the page's path, on every request): statements built once, so only their parameters change.
_ONE = bindparam("cid")
_ONE_PAY = select(*_PAY_COLS).where(pt.c.customer_id == _ONE).order_by(pt.c.id)
_ONE_ARR = select(at).where(at.c.customer_id == _ONE, at.c.status == "open").order_by(at.c.id)
_ONE_OUT = select(*_OUT_COLS).where(ot.c.customer_id == _ONE, ot.c.withdrawn_at.is_(None))
_ONE_SNAP = select(*_SNAP_COLS).join(st, st.c.id == ct.c.snapshot_id).where(ct.c.customer_id == _ONE)


def _fetch(conn: Connection, ids: list[str], with_snapshot: bool = True):
    """Rows of every table that matter, for a chunk of customer ids (4 indexed queries)."""
    if len(ids) == 1:
        one = {"cid": ids[0]}
        pays = conn.execute(_ONE_PAY, one).all()
        snaps = conn.execute(_ONE_SNAP, one).all() if with_snapshot or pays else []
        return pays, conn.execute(_ONE_ARR, one).all(), conn.execute(_ONE_OUT, one).all(), snaps
    pays = conn.execute(select(*_PAY_COLS).where(pt.c.customer_id.in_(ids)).order_by(pt.c.id)).all()
    arr = conn.execute(select(at).where(at.c.customer_id.in_(ids), at.c.status == "open")
                       .order_by(at.c.id)).all()
    outs = conn.execute(select(*_OUT_COLS).where(ot.c.customer_id.in_(ids), ot.c.withdrawn_at.is_(None))).all()
    # which import each customer's data comes from: for everyone when asked, else only for those who paid
    want = ids if with_snapshot else sorted({r.customer_id for r in pays})
    snaps = conn.execute(select(*_SNAP_COLS).join(st, st.c.id == ct.c.snapshot_id)
                         .where(ct.c.customer_id.in_(want))).all() \
        if want else []
    return pays, arr, outs, snaps


def _states(conn: Connection, ids: list[str], with_snapshot: bool = True) -> dict[str, CustomerState]:
    pays, arr, outs, snaps = _fetch(conn, ids, with_snapshot)
    p_by, a_by, o_by = defaultdict(list), defaultdict(dict), defaultdict(list)
    for r in pays:
        p_by[r.customer_id].append(PaymentRecord(r.created_at, Decimal(r.amount), Decimal(r.waived), r.currency,
                                                 r.provider, r.campaign))
    for r in arr:
        a_by[r.customer_id][r.kind] = _arrangement(r._mapping)  # newest open one of each kind wins
    for r in outs:
        o_by[r.customer_id].append(OptOut(r.channel, r.address_digest, r.created_at))
    snap = {r.customer_id: (r.snapshot_id, r.created_at) for r in snaps}
    return {cid: CustomerState(customer_id=cid, snapshot_id=snap.get(cid, (None, None))[0],
                               snapshot_created_at=snap.get(cid, (None, None))[1], payments=tuple(p_by[cid]),
                               plan=a_by[cid].get("plan"), promise=a_by[cid].get("promise"),
                               dispute=a_by[cid].get("dispute"), opt_outs=tuple(o_by[cid]))
            for cid in ids}


def customer_state(target: Store | Connection, customer_id: str) -> CustomerState:
    """One customer's state (on an open connection, or in a transaction of its own)."""
    if isinstance(target, Store):
        with target.begin() as conn:
            return _states(conn, [customer_id])[customer_id]
    return _states(target, [customer_id])[customer_id]


def customer_states(store: Store, customer_ids: Iterable[str], *, with_snapshot: bool = True
                    ) -> dict[str, CustomerState]:
    """States of many customers; ``with_snapshot=False`` looks up the import only for those who paid."""
    ids = list(dict.fromkeys(customer_ids))
    out: dict[str, CustomerState] = {}
    with store.begin() as conn:
        for start in range(0, len(ids), CHUNK):
            out.update(_states(conn, ids[start:start + CHUNK], with_snapshot))
    return out


def _address_opt_outs(conn: Connection, digests: list[str]) -> set[tuple[str, str]]:
    """(channel, digest) of addresses opted out by anyone (an address is opted out whoever it belongs to)."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(digests), CHUNK):
        rows = conn.execute(select(ot.c.channel, ot.c.address_digest).where(
            ot.c.address_digest.in_(digests[start:start + CHUNK]), ot.c.withdrawn_at.is_(None))).all()
        found.update((r.channel, r.address_digest) for r in rows)
    return found


def blockers_for(state: CustomerState, channel: str, address: str | None = None, since: datetime | None = None,
                 today: date | None = None, address_blocked: bool = False) -> list[str]:
    """The reasons not to contact this customer on this channel now (empty: go ahead)."""
    today = today or date.today()
    reasons: list[str] = []
    paid, waived = state.paid_since(since if since is not None else state.snapshot_created_at)
    if paid + waived > 0:
        reasons.append("paid")
    if state.plan is not None and (state.plan.until is None or state.plan.until >= today):
        reasons.append(f"instalment plan until {state.plan.until.isoformat() if state.plan.until else '?'}")
    if state.promise is not None and state.promise.until is not None and state.promise.until >= today:
        reasons.append(f"promise to pay until {state.promise.until.isoformat()}")
    if state.dispute is not None:
        reasons.append("dispute open")
    if channel in ("email", "letter", "sms"):
        digest = address_digest(address) if address else None
        for o in state.opt_outs:
            if o.channel == "all":
                reasons.append("opted out of all contact")
            elif o.channel == channel and o.address_digest is None:
                reasons.append(f"opted out of {channel}")
            elif o.channel == channel and (digest is None or o.address_digest == digest):
                reasons.append(f"opted out of {channel} at this address")
        if address_blocked and not any(r.startswith(f"opted out of {channel}") for r in reasons):
            reasons.append(f"opted out of {channel} at this address")
    return list(dict.fromkeys(reasons))


def contact_blockers(store: Store, customer_id: str, channel: str, address: str | None = None,
                     since: datetime | None = None, today: date | None = None) -> list[str]:
    """Why not to contact one customer on ``channel`` (at ``address``) now; empty list: go ahead.

    Example: contact_blockers(store, "C0001", "email", "ann@example.com", since=campaign_started_at)
    """
    return contact_blockers_many(store, [customer_id], channel, {customer_id: address} if address else None,
                                 since=since, today=today)[customer_id]


def contact_blockers_many(store: Store, customer_ids: Iterable[str], channel: str,
                          addresses: dict[str, str | None] | None = None, since: datetime | None = None,
                          today: date | None = None) -> dict[str, list[str]]:
    """:func:`contact_blockers` for a batch: a handful of indexed queries per 5,000 customers."""
    ids = list(dict.fromkeys(customer_ids))
    addresses = {k: v for k, v in (addresses or {}).items() if isinstance(v, str) and v.strip()}
    states = customer_states(store, ids, with_snapshot=False)
    blocked: set[tuple[str, str]] = set()
    if addresses and channel in ("email", "letter", "sms"):
        digests = {cid: address_digest(a) for cid, a in addresses.items()}
        with store.begin() as conn:
            blocked = _address_opt_outs(conn, sorted(set(digests.values())))
    else:
        digests = {}
    return {cid: blockers_for(states[cid], channel, addresses.get(cid), since, today,
                              address_blocked=(channel, digests.get(cid)) in blocked or ("all", digests.get(cid))
                              in blocked)
            for cid in ids}


__all__ = ["Arrangement", "CustomerState", "OptOut", "PaymentRecord", "blockers_for", "contact_blockers",
           "contact_blockers_many", "customer_state", "customer_states"]
