"""The site's per-process state and the one way a request becomes a customer's visit.

:class:`Site` holds what is built once per process (link signer, segments, portfolio indexes, compiled
templates, payment provider, CSRF key, rate limits, event buffer, context builders). :meth:`Site.visit`
turns a token into a :class:`Visit` or None, and None always ends in the same neutral page, whatever
failed: forged, tampered, expired, revoked, or a customer no longer in any snapshot. Customer id and campaign
come from the verified token only; nothing a request carries can name another customer.

A visit shows the customer's imported data minus what they paid since that import (oldest invoices first),
with the offers of their segment computed on what is left. Offers are computed as of the day the link was
issued, so the page says what the e-mail and the letter said (the settlement deadline above all); what has
lapsed since is withdrawn (a settlement past its deadline, a promise window that closed), and a plan's
schedule starts from today when the issued one would already have begun.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.pool import QueuePool

from ..config import Settings
from ..errors import LinkError
from ..events import EventBuffer
from ..models import Customer, Invoice
from ..payments import LinkSigner
from ..payments.links import LinkClaims
from ..payments.offers import InstalmentPlan, OfferSet, Settlement, offers_for
from ..payments.providers import provider_from_settings
from ..payments.status import CustomerState, customer_state
from ..payments.revocations import token_digest
from ..render.context import ContextBuilder, Creditor
from ..segment.config import load_segments
from ..store import Store
from ..store.db import _sqlite_pragmas
from .cache import PageCache
from .portfolio import Portfolio
from .probe import LinkProbe
from .security import Csrf, RateLimiter, derive_key, token_tag
from .view import PageTemplates

log = logging.getLogger("comms.web")
VIDEO_FILES = {"video.mp4": "video/mp4", "captions.vtt": "text/vtt; charset=utf-8", "poster.jpg": "image/jpeg",
               "preview.webp": "image/webp"}
ARTIFACT_RECHECK = 5.0
# Events (page views) wait in memory for the writer task (comms.web.app, a few times a second), never written
# on a page's own time; only when this many wait (the database has fallen far behind) does a page write them
# itself: slower pages, nothing dropped.
EVENT_BACKLOG = 20_000
_SAFE_PART = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")


def _safe_part(name: str) -> bool:
    """A campaign or customer id that can only ever name one folder or file inside the artifacts folder."""
    return bool(_SAFE_PART.match(name)) and ".." not in name


def _remembered(cache: dict, key, now: float, limit: int, look):
    """``look()`` for ``key``, remembered for ``ARTIFACT_RECHECK`` seconds; the cache is emptied when it
    holds more than ``limit`` entries."""
    found = cache.get(key)
    if found is None or now - found[0] > ARTIFACT_RECHECK:
        found = cache[key] = (now, look())
        if len(cache) > limit:
            cache.clear()
    return found[1]


def open_web_store(settings: Settings) -> Store:
    """The store, migrated, with a connection pool (SQLite's default NullPool opens a file per request)."""
    migrated = Store.open(settings)
    if migrated.dialect != "sqlite":
        return migrated
    migrated.dispose()
    engine = create_engine(settings.database_url, poolclass=QueuePool, pool_size=8, max_overflow=8,
                           connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return Store(settings, engine)


@dataclass(frozen=True)
class EffectiveOffers:
    """What the customer may choose today (the page shows these and the forms accept only these)."""

    offers: OfferSet
    settlement: Settlement | None
    plans: tuple[InstalmentPlan, ...]
    promise_window: tuple[date, date] | None
    minimum_instalment: Decimal | None


@dataclass(frozen=True)
class Visit:
    token: str
    claims: LinkClaims
    customer: Customer  # as shown: balance and invoices net of payments since the import
    segment: str
    treatment: str
    state: CustomerState
    paid: Decimal  # paid + waived since the import
    as_of: date
    today: date
    choices: EffectiveOffers

    @property
    def campaign(self) -> str:
        return self.claims.campaign

    @property
    def customer_id(self) -> str:
        return self.claims.customer_id

    @property
    def settled(self) -> bool:
        return self.customer.balance <= 0

    def next_instalment(self) -> tuple[int, date, Decimal] | None:
        """(number, due date, amount) of the open plan's next instalment, capped at the balance."""
        plan = self.state.plan
        if plan is None or not plan.schedule or self.settled:
            return None
        made = sum(1 for p in self.state.payments if p.created_at >= plan.created_at)
        if made >= len(plan.schedule):
            return None
        due, amount = plan.schedule[made]
        return made + 1, due, min(amount, self.customer.balance)


def effective_offers(customer: Customer, spec, as_of: date, today: date) -> EffectiveOffers:
    """The segment's offers (``spec``: its Offers) for what the customer owes, as of the link's issue day,
    without what has lapsed by ``today``."""
    offers = offers_for(customer.balance, customer.currency, spec, as_of)
    settlement = offers.settlement if offers.settlement and offers.settlement.deadline >= today else None
    plans = offers.plans
    if plans and plans[0].schedule[0][0] <= today:
        plans = offers_for(customer.balance, customer.currency, spec, today).plans
    window = None
    if offers.promise_latest and offers.promise_latest >= today:
        window = (today, offers.promise_latest)
    minimum = Decimal(spec.instalments.minimum) if spec.instalments else None
    return EffectiveOffers(offers, settlement, tuple(plans), window, minimum)


def allocate(invoices: tuple[Invoice, ...], paid: Decimal) -> tuple[Invoice, ...]:
    """Invoices still open after ``paid`` is applied oldest first."""
    out = []
    for inv in invoices:
        take = min(paid, max(inv.open_amount, Decimal(0)))
        paid -= take
        if inv.open_amount - take > 0:
            out.append(replace(inv, open_amount=inv.open_amount - take))
    return tuple(out)


class Site:
    """Everything a request needs that is built once per process; cheap to ask, safe across threads."""

    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.store = store or open_web_store(settings)
        self.signer = LinkSigner.from_settings(settings)
        self.segments = load_segments(settings.segments_file, settings.templates_dir)
        self.segment_by_name = {s.name: s for s in self.segments.segments}
        self.fallback_segment = self.segments.segments[-1].name
        self.portfolio = Portfolio(self.store)
        self.templates = PageTemplates(settings.templates_dir)
        self.provider = provider_from_settings(settings)
        self.https = settings.base_url.startswith("https://")
        self.csrf = Csrf(derive_key(self.signer.keys.signing.secret, b"csrf v1"), secure=self.https)
        self.limiter = RateLimiter.from_settings(settings)
        self.events = EventBuffer(self.store, max_rows=EVENT_BACKLOG)
        self.creditor = Creditor.from_settings(settings)
        self.artifacts_dir = Path(settings.artifacts_dir).resolve()
        self.page_cache = PageCache(max_bytes=settings.get("web_page_cache_mb", default=64, cast=int) * 2**20)
        self._builders: OrderedDict[tuple[str, date], ContextBuilder] = OrderedDict()
        self._artifacts: dict[tuple[str, str], tuple[float, dict[str, Path]]] = {}
        self._campaign_folders: dict[str, tuple[float, tuple[bool, bool]]] = {}
        self._probes: dict[int, LinkProbe] = {}
        self._lock = threading.Lock()

    # -- the visit ----------------------------------------------------------------------------------------

    def claims(self, token: str) -> LinkClaims | None:
        """Authentic, unexpired and not revoked: the token's claims; else None (and a log line)."""
        try:
            return self.signer.verify(token, store=self.store)
        except LinkError as exc:
            log.info("link %s refused: %s", token_tag(token), exc.reason)
            return None

    def _claims_and_state(self, token: str) -> tuple[LinkClaims, CustomerState] | None:
        """:meth:`claims` and the customer's state (the page's hot path: one statement for most customers,
        see :mod:`comms.web.probe`)."""
        try:
            claims = self.signer.verify(token)
        except LinkError as exc:
            log.info("link %s refused: %s", token_tag(token), exc.reason)
            return None
        cid = claims.customer_id
        refs = self.signer.customer_refs(cid)
        probe = self._probe(len(refs)).run(token_digest(token), refs, claims.issued_at, cid)
        if probe.revoked:
            log.info("link %s refused: revoked", token_tag(token))
            return None
        if probe.answered:
            with self.store.begin() as conn:
                return claims, customer_state(conn, cid)
        if probe.snapshot_id is None:
            return claims, CustomerState(cid)
        imported = self.portfolio.index(probe.snapshot_id).snapshot.created_at
        return claims, CustomerState(cid, probe.snapshot_id, imported)

    def _probe(self, keys: int) -> LinkProbe:
        found = self._probes.get(keys)
        if found is None:
            found = self._probes[keys] = LinkProbe(self.store.engine, keys)
        return found

    def visit(self, token: str, today: date | None = None) -> Visit | None:
        found = self._claims_and_state(token)
        if found is None:
            return None
        claims, state = found
        if state.snapshot_id is None:
            log.info("link %s: customer not in any snapshot", token_tag(token))
            return None
        original = self.portfolio.customer(state.snapshot_id, claims.customer_id)
        if original is None:
            log.info("link %s: customer missing from snapshot %s", token_tag(token), state.snapshot_id)
            return None
        segment = self.portfolio.segment_of(state.snapshot_id, claims.customer_id)
        if segment not in self.segment_by_name:
            segment = self.fallback_segment
        paid, waived = state.paid_since(state.snapshot_created_at)
        settled = paid + waived
        customer = original if not settled else replace(
            original, balance=max(original.balance - settled, Decimal(0)),
            invoices=allocate(original.invoices, settled))
        today = today or date.today()
        as_of = min(claims.issued_at.date(), today)
        return Visit(token=token, claims=claims, customer=customer, segment=segment,
                     treatment=self.segment_by_name[segment].treatment, state=state, paid=settled,
                     as_of=as_of, today=today, choices=self._choices(customer, segment, as_of, today))

    def _choices(self, customer: Customer, segment: str, as_of: date, today: date) -> EffectiveOffers:
        return effective_offers(customer, self.segment_by_name[segment].offers, as_of, today)

    def builder(self, campaign: str, as_of: date) -> ContextBuilder:
        key = (campaign, as_of)
        with self._lock:
            found = self._builders.get(key)
            if found is None:
                found = self._builders[key] = ContextBuilder(self.settings, self.segments, self.signer,
                                                                 campaign, as_of=as_of)
                while len(self._builders) > 64:
                    self._builders.popitem(last=False)
            return found

    # -- files of the campaign named in the token --------------------------------------------------------

    def artifact(self, visit: Visit, name: str) -> Path | None:
        """A video file or the letter of this visit's campaign and customer, if rendered; never other paths.

        What exists is looked up for all five files at once and remembered for a few seconds (a page asks
        several times; a video that finishes rendering shows up within ``ARTIFACT_RECHECK`` seconds). A
        campaign with no video or letters folder at all costs no lookup per customer."""
        now = time.monotonic()
        video, letters = self._folders(visit.campaign, now)
        if not (video or letters):
            return None
        found = _remembered(self._artifacts, (visit.campaign, visit.customer_id), now, 50_000,
                            lambda: self._find_artifacts(visit.campaign, visit.customer_id, video, letters))
        return found.get(name)

    def _folders(self, campaign: str, now: float) -> tuple[bool, bool]:
        """(has a video folder, has a letters folder) for a campaign, looked at every few seconds."""
        def look() -> tuple[bool, bool]:
            folder = os.path.join(self.artifacts_dir, campaign)
            safe = _safe_part(campaign)
            return (safe and os.path.isdir(os.path.join(folder, "video")),
                    safe and os.path.isdir(os.path.join(folder, "letters")))

        return _remembered(self._campaign_folders, campaign, now, 1_000, look)

    def _find_artifacts(self, campaign: str, cid: str, video: bool, letters: bool) -> dict[str, Path]:
        if not _safe_part(cid):
            return {}
        folder = os.path.join(self.artifacts_dir, campaign)
        candidates = {}
        customer_videos = os.path.join(folder, "video", cid)
        if video and os.path.isdir(customer_videos):
            candidates = {name: os.path.join(customer_videos, name) for name in VIDEO_FILES}
        if letters:
            candidates["letter.pdf"] = os.path.join(folder, "letters", f"{cid}.pdf")
        out = {}
        for name, path in candidates.items():
            if not os.path.isfile(path):
                continue
            resolved = Path(path).resolve()  # a symbolic link must not lead out of the artifacts folder
            if resolved.is_relative_to(self.artifacts_dir):
                out[name] = resolved
        return out

    def close(self) -> None:
        self.events.flush()


__all__ = ["EffectiveOffers", "Site", "VIDEO_FILES", "Visit", "allocate", "effective_offers", "open_web_store"]
