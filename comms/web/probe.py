"""The one statement every page view runs first, on the database driver's own connection.

It answers three questions at once: is the link revoked (its digest, or its customer's references as of its
issue time: the test of :func:`comms.payments.revocations.is_revoked`, and a test checks both always agree),
which import holds the customer (``customers.snapshot_id``), and has the customer done anything at all
(a payment, an open arrangement, an opt-out; most have not, and then the queries of their full state are
skipped).

The SQL is compiled once per dialect and number of link keys (one bound parameter per key: an expanding IN
would be rendered again on every view) and run with the driver's cursor on a pooled connection: SQLAlchemy's
work per execution (cache lookup, parameter and result processing, connection and transaction objects) costs
about three times the query itself, on the path every page takes. Parameters still pass through their column
types' bind processors (a datetime becomes what SQLite stores), and the answer holds integers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, exists, or_, select

from ..store.schema import (arrangements as arrs, contact_opt_outs as outs, customers as cust,
                            link_revocations as rv, payments as pays)


@dataclass(frozen=True)
class Probe:
    revoked: bool
    snapshot_id: int | None  # None: the customer is in no import
    answered: bool  # paid, has an open arrangement or an opt-out: read their full state


def probe_statement(keys: int):
    """The probe as a SQLAlchemy statement, for ``keys`` customer references (one per link key)."""
    cid = bindparam("cid")
    return select(
        or_(exists().where(rv.c.token_digest == bindparam("digest")),
            exists().where(rv.c.customer_ref.in_([bindparam(f"ref{i}") for i in range(keys)]),
                           rv.c.created_at >= bindparam("issued", type_=rv.c.created_at.type))).label("revoked"),
        select(cust.c.snapshot_id).where(cust.c.customer_id == cid).scalar_subquery().label("snapshot_id"),
        or_(exists().where(pays.c.customer_id == cid),
            exists().where(arrs.c.customer_id == cid, arrs.c.status == "open"),
            exists().where(outs.c.customer_id == cid, outs.c.withdrawn_at.is_(None))).label("answered"))


class LinkProbe:
    """:func:`probe_statement` compiled for one engine, run on the driver's cursor."""

    def __init__(self, engine: Engine, keys: int):
        self.engine = engine
        self.keys = keys
        self._compiled = probe_statement(keys).compile(dialect=engine.dialect)
        self.sql = str(self._compiled)
        self._order = self._compiled.positiontup  # parameter names in order (SQLite); None: by name (PostgreSQL)
        processors = ((name, bind.type.bind_processor(engine.dialect)) for name, bind in self._compiled.binds.items())
        self._processors = [(name, process) for name, process in processors if process is not None]

    def run(self, digest: str, refs: list[str], issued: datetime, customer_id: str) -> Probe:
        if len(refs) != self.keys:
            raise ValueError(f"the probe was compiled for {self.keys} customer references, not {len(refs)}")
        given = {"digest": digest, "issued": issued, "cid": customer_id}
        given.update((f"ref{i}", ref) for i, ref in enumerate(refs))
        params = self._compiled.construct_params(given)
        for name, process in self._processors:
            params[name] = process(params[name])
        args = params if self._order is None else tuple(params[name] for name in self._order)
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(self.sql, args)
            revoked, snapshot_id, answered = cursor.fetchone()
            cursor.close()
        finally:
            connection.close()
        return Probe(bool(revoked), snapshot_id, bool(answered))


__all__ = ["LinkProbe", "Probe", "probe_statement"]
