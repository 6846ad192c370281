"""The template context of a customer's page: the shared context (comms.render.context) plus ``page``.

``page`` holds what only the site knows: form action URLs (relative, under the visit's token), the CSRF
token, what the customer did since the import (paid, plan, promise, dispute, opt-outs), the choices open
today (with each plan's label and numbered schedule), the video and letter when rendered, and a status or
error message code after a form. Codes and attribution values are checked against closed sets here, so
nothing a URL carries reaches the page except as one of them.
"""

from __future__ import annotations

import re
from typing import Any

from ..payments.arrangements import DISPUTE_REASONS
from ..render import formatting as fmt
from .site import Site, Visit
from .view import months_label

DONE = frozenset({"paid", "plan", "promise", "dispute", "prefs", "cancelled", "failed", "pending"})
ERRORS = frozenset({"promise_date", "plan", "reason", "session", "pay"})
VIA = frozenset({"email", "letter", "video", "sms", "qr"})
_VARIANT = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def clean_via(value: str | None) -> str | None:
    return value if value in VIA else None


def clean_variant(value: str | None) -> str | None:
    return value if value and _VARIANT.match(value) else None


def _plan_view(plan, money, day, locale: str, formatted: dict | None) -> dict[str, Any]:
    """A plan for the page: the context's own formatting when the plan is the one it formatted."""
    if formatted is None:
        formatted = {"months": plan.months, "instalment": money(plan.instalment), "total": money(plan.total),
                     "schedule": [{"date": day(d), "amount": money(a)} for d, a in plan.schedule]}
    return {**formatted, "label": months_label(plan.months, locale),
            "schedule": [{"n": i, **row} for i, row in enumerate(formatted["schedule"], start=1)]}


def page_context(site: Site, visit: Visit, *, csrf: str, done: str | None = None, error: str | None = None,
                 via: str | None = None, variant: str | None = None) -> dict[str, Any]:
    """The full context for ``page.html`` and the other pages of a visit."""
    ctx = site.builder(visit.campaign, visit.as_of).build(visit.customer, visit.segment, token=visit.token)
    return add_page(ctx, visit, csrf=csrf, done=done, error=error, via=via, variant=variant,
                    artifact=lambda name: site.artifact(visit, name), test_mode=site.provider.test_mode,
                    static=site.templates.static_urls())


def add_page(ctx: dict[str, Any], visit: Visit, *, csrf: str, artifact, test_mode: bool, static: dict,
             done: str | None = None, error: str | None = None, via: str | None = None,
             variant: str | None = None) -> dict[str, Any]:
    """Add ``page`` (and ``lang``, ``dir``, ``static``) to a context built for the visit's customer, in
    place: the words in ``t`` are rendered over this same dict, so they may name ``page``."""
    c = visit.customer
    loc, cur = c.locale, c.currency
    money = lambda amount: fmt.money(amount, cur, loc)  # noqa: E731
    day = lambda d: fmt.day(d, loc)  # noqa: E731
    ch = visit.choices
    offers = ctx["offers"]
    if ch.settlement is None:
        offers["settlement"] = None
    same = ch.plans == ch.offers.plans  # else the schedules were moved to start from today
    offers["plans"] = [_plan_view(p, money, day, loc, offers["plans"][i] if same else None)
                       for i, p in enumerate(ch.plans)]
    offers["promise_latest"] = day(ch.promise_window[1]) if ch.promise_window else None

    base = f"/p/{visit.token}"
    state = visit.state
    plan = None
    if state.plan is not None and state.plan.schedule:
        nxt = visit.next_instalment()
        plan = {"months": state.plan.months, "label": months_label(state.plan.months or 0, loc),
                "instalment": money(state.plan.schedule[0][1]), "until": day(state.plan.until),
                "schedule": [{"n": i, "date": day(d), "amount": money(a), "paid": nxt is None or i < nxt[0]}
                             for i, (d, a) in enumerate(state.plan.schedule, start=1)],
                "next": None if nxt is None else {"n": nxt[0], "date": day(nxt[1]), "amount": money(nxt[2])}}
    promise = None
    if state.promise is not None and state.promise.until and state.promise.until >= visit.today:
        promise = {"date": day(state.promise.until), "amount": money(state.promise.amount or c.balance)}
    pay_options = []
    if not visit.settled:
        nxt = visit.next_instalment()
        if nxt is not None:
            pay_options.append({"value": "instalment", "amount": money(nxt[2]), "n": nxt[0]})
        if ch.settlement is not None:
            pay_options.append({"value": "settlement", "amount": money(ch.settlement.pay),
                                "discount": money(ch.settlement.discount), "deadline": day(ch.settlement.deadline)})
        pay_options.append({"value": "full", "amount": money(c.balance)})

    video = None
    if artifact("video.mp4"):
        video = {"mp4": f"{base}/video.mp4", "page": f"{base}/video",
                 "captions": f"{base}/captions.vtt" if artifact("captions.vtt") else None,
                 "poster": f"{base}/poster.jpg" if artifact("poster.jpg") else None}
    hidden = {k: v for k, v in (("via", clean_via(via)), ("v", clean_variant(variant))) if v}
    ctx["lang"], ctx["dir"] = ctx["customer"]["lang"], ctx["customer"]["dir"]
    ctx["static"] = static
    ctx["page"] = {
        "csrf": csrf, "hidden": hidden, "done": done if done in DONE else None,
        "error": error if error in ERRORS else None, "settled": visit.settled,
        "paid": money(visit.paid) if visit.paid > 0 else None, "plan": plan, "promise": promise,
        "dispute": {"reason": state.dispute.reason} if state.dispute is not None else None,
        "pay_options": pay_options, "test_mode": test_mode,
        "minimum_instalment": money(ch.minimum_instalment) if ch.minimum_instalment is not None else None,
        "promise_min": ch.promise_window[0].isoformat() if ch.promise_window else None,
        "promise_max": ch.promise_window[1].isoformat() if ch.promise_window else None,
        "reasons": list(DISPUTE_REASONS),
        "prefs": {"email": not state.opted_out("email", c.email), "letter": not state.opted_out("letter"),
                  "has_email": bool(c.email)},
        "video": video, "letter": f"{base}/letter.pdf" if artifact("letter.pdf") else None,
        "urls": {"page": base, "pay": f"{base}/pay", "plan": f"{base}/plan", "promise": f"{base}/promise",
                 "dispute": f"{base}/dispute", "preferences": f"{base}/preferences", "events": f"{base}/events",
                 "video": f"{base}/video", "unsubscribe": f"/u/{visit.token}"},
    }
    return ctx


def render_page(site: Site, visit: Visit, name: str, *, csrf: str, done: str | None = None,
                error: str | None = None, via: str | None = None, variant: str | None = None,
                extra: dict | None = None) -> str:
    """A page of the visit as HTML; the plain personal page comes from the page cache when it can, and is
    kept there from its second view on (a first view costs what it would without the cache)."""
    key = None
    if name == "page.html" and not done and not error and not extra:
        files = tuple(site.artifact(visit, f) is not None for f in ("video.mp4", "captions.vtt", "poster.jpg",
                                                                      "letter.pdf"))
        key = (visit.token, visit.today, visit.state.snapshot_id, visit.segment, visit.state.fingerprint,
               clean_via(via), clean_variant(variant), files, site.templates.version())
        cached = site.page_cache.get(key)
        if cached is not None:
            return cached.replace(site.page_cache.placeholder, csrf)
        if not site.page_cache.admit(key):
            key = None
    ctx = page_context(site, visit, csrf=site.page_cache.placeholder if key is not None else csrf, done=done,
                       error=error, via=via, variant=variant)
    ctx.update(extra or {})
    html = site.templates.render(visit.treatment, name, ctx)
    if key is not None:
        site.page_cache.put(key, html)
        html = html.replace(site.page_cache.placeholder, csrf)
    return html


__all__ = ["DONE", "ERRORS", "VIA", "add_page", "clean_variant", "clean_via", "page_context", "render_page"]
