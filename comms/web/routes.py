"""The personal page and what the customer does there: pay, pick a plan, promise, dispute, set preferences.

Every route starts the same way (:func:`_open`): rate limits, then the token, verified, becomes a visit, or
the neutral page. Forms are POSTed with a CSRF token and answered with a 303 redirect to the page, which then
shows a status message (post/redirect/get), so everything works without JavaScript and a reload never
submits twice. Amounts are never read from a form: a form names a choice (``full``, ``settlement``,
``instalment``, a number of months, a date) and the server computes the rest from the visit.
"""

from __future__ import annotations

import logging
from datetime import date

from starlette.requests import Request
from starlette.responses import Response

from ..errors import CommsError
from ..events import QUARTILES, dedupe_digest
from ..payments.arrangements import DISPUTE_REASONS, choose_plan, make_promise, open_dispute
from ..payments.checkout import (PaymentError, cancel_checkout, create_checkout, get_checkout,
                                 record_payment)
from ..payments.preferences import set_preferences
from .pagecontext import clean_variant, clean_via, render_page
from .responses import client_ip, html, neutral, redirect, session_of, site_of, too_many
from .security import CSRF_COOKIE, CSRF_FIELD, token_tag
from .site import Site, Visit

log = logging.getLogger("comms.web")
MAX_FIELDS = 20


def _open(request: Request) -> tuple[Site, Visit | None, Response | None]:
    site = site_of(request)
    token = request.path_params["token"]
    ip = client_ip(request)
    if not site.limiter.allow(ip, token):
        return site, None, too_many(site, request)
    visit = site.visit(token)
    if visit is None:
        site.limiter.failed(ip)
        return site, None, neutral(site, request)
    return site, visit, None


def _render(site: Site, request: Request, visit: Visit, name: str, *, extra: dict | None = None,
            status: int = 200) -> Response:
    session, new = session_of(site, request)
    q = request.query_params
    body = render_page(site, visit, name, csrf=site.csrf.token(session, visit.token), done=q.get("done"),
                       error=q.get("error"), via=q.get("via"), variant=q.get("v"), extra=extra)
    return html(body, status, cookie=site.csrf.cookie_header(session) if new else None)


async def _form(request: Request, site: Site, visit: Visit):
    """The POSTed form if its CSRF token is valid for this browser and link; else None."""
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    session = request.cookies.get(CSRF_COOKIE)
    if not site.csrf.valid(session, visit.token, form.get(CSRF_FIELD)):
        log.info("link %s: form without a valid CSRF token", token_tag(visit.token))
        return None
    return form


def _attribution(form) -> dict:
    return {"variant": clean_variant(form.get("v"))}


def _back(visit: Visit, *, done: str | None = None, error: str | None = None, anchor: str = "") -> Response:
    query = f"?done={done}" if done else f"?error={error}" if error else ""
    return redirect(f"/p/{visit.token}{query}{'#' + anchor if anchor else ''}")


# -- the page --------------------------------------------------------------------------------------------

async def _posted(request: Request):
    """((site, visit, form), None) for a POST from a valid link with its CSRF-checked form, else
    (None, the response that refuses it)."""
    site, visit, refused = _open(request)
    if refused:
        return None, refused
    form = await _form(request, site, visit)
    if form is None:
        return None, _back(visit, error="session")
    return (site, visit, form), None


async def page(request: Request) -> Response:
    site, visit, refused = _open(request)
    if refused:
        return refused
    response = _render(site, request, visit, "page.html")
    q = request.query_params
    if not q.get("done") and not q.get("error"):
        site.events.add("page_viewed", campaign=visit.campaign, channel=clean_via(q.get("via")) or "page",
                        variant=clean_variant(q.get("v")), customer_id=visit.customer_id)
    return response


async def video_page(request: Request) -> Response:
    site, visit, refused = _open(request)
    if refused:
        return refused
    if site.artifact(visit, "video.mp4") is None:
        return redirect(f"/p/{visit.token}")
    return _render(site, request, visit, "video.html")


# -- paying ----------------------------------------------------------------------------------------------

def _pay_choice(visit: Visit, choice: str):
    """(purpose, amount, waive) for a choice the visit offers today; None otherwise."""
    if visit.settled:
        return None
    if choice == "full":
        return "full", visit.customer.balance, 0
    if choice == "settlement" and visit.choices.settlement is not None:
        s = visit.choices.settlement
        return "settlement", s.pay, s.discount
    if choice == "instalment":
        nxt = visit.next_instalment()
        return ("instalment", nxt[2], 0) if nxt else None
    return None


async def pay_page(request: Request) -> Response:
    site, visit, refused = _open(request)
    if refused:
        return refused
    if visit.settled:
        return redirect(f"/p/{visit.token}?done=paid#status")
    if not request.query_params.get("error"):
        site.events.add("pay_clicked", campaign=visit.campaign, channel=clean_via(request.query_params.get("via"))
                        or "page", variant=clean_variant(request.query_params.get("v")),
                        customer_id=visit.customer_id)
    return _render(site, request, visit, "pay.html")


async def pay_start(request: Request) -> Response:
    posted, refused = await _posted(request)
    if refused:
        return refused
    site, visit, form = posted
    choice = _pay_choice(visit, str(form.get("choice", "")))
    if choice is None:
        return redirect(f"/p/{visit.token}/pay?error=pay")
    purpose, amount, waive = choice
    checkout = create_checkout(site.store, provider=site.provider.name, campaign=visit.campaign,
                               customer_id=visit.customer_id, purpose=purpose, amount=amount, waive=waive,
                               currency=visit.customer.currency, **_attribution(form))
    base = site.settings.base_url
    return redirect(site.provider.start(checkout, page_url=f"{base}/p/{visit.token}",
                                        callback_url=f"{base}/hooks/payments/{site.provider.name}"))


def _own_checkout(site: Site, visit: Visit, request: Request):
    checkout = get_checkout(site.store, request.path_params["checkout"], customer_id=visit.customer_id,
                            campaign=visit.campaign)
    return checkout if checkout is not None and checkout.provider == "demo" == site.provider.name else None


async def checkout_page(request: Request) -> Response:
    site, visit, refused = _open(request)
    if refused:
        return refused
    checkout = _own_checkout(site, visit, request)
    if checkout is None:
        return neutral(site, request)
    if checkout.status != "open":
        return _back(visit, done="paid" if checkout.status == "paid" else None, anchor="status")
    from ..render.formatting import money
    amount = money(checkout.amount, checkout.currency, visit.customer.locale)
    return _render(site, request, visit, "checkout.html", extra={"checkout": {
        "amount": amount, "purpose": checkout.purpose, "action": f"/p/{visit.token}/checkout/{checkout.id}"}})


async def checkout_submit(request: Request) -> Response:
    site, visit, refused = _open(request)
    if refused:
        return refused
    checkout = _own_checkout(site, visit, request)
    if checkout is None:
        return neutral(site, request)
    form = await _form(request, site, visit)
    if form is None:
        return _back(visit, error="session")
    if form.get("action") == "cancel":
        cancel_checkout(site.store, checkout)
        return _back(visit, done="cancelled", anchor="status")
    result = site.provider.complete(checkout)
    record_payment(site.store, checkout, provider_ref=result.provider_ref, amount=result.amount,
                   currency=result.currency, **_attribution(form))
    return _back(visit, done="paid", anchor="status")


async def pay_return(request: Request) -> Response:
    """The browser back from the creditor's portal: recorded when signed and paid, else only shown."""
    site, visit, refused = _open(request)
    if refused:
        return refused
    try:
        result = site.provider.parse_callback(dict(request.query_params))
    except PaymentError as exc:
        log.info("link %s: payment return refused: %s", token_tag(visit.token), exc)
        return _back(visit, done="pending", anchor="status")
    checkout = get_checkout(site.store, result.checkout_id, customer_id=visit.customer_id,
                            campaign=visit.campaign)
    if checkout is None:
        return neutral(site, request)
    if not result.paid:
        return _back(visit, done=result.status, anchor="status")
    try:
        record_payment(site.store, checkout, provider_ref=result.provider_ref, amount=result.amount,
                       currency=result.currency)
    except PaymentError as exc:
        log.warning("link %s: payment return not booked: %s", token_tag(visit.token), exc)
        return _back(visit, done="pending", anchor="status")
    return _back(visit, done="paid", anchor="status")


# -- arrangements ----------------------------------------------------------------------------------------

async def plan_chosen(request: Request) -> Response:
    posted, refused = await _posted(request)
    if refused:
        return refused
    site, visit, form = posted
    try:
        months = int(str(form.get("months", "")))
    except ValueError:
        months = 0
    plan = next((p for p in visit.choices.plans if p.months == months), None)
    if plan is None or visit.settled:
        return _back(visit, error="plan", anchor="plans")
    choose_plan(site.store, campaign=visit.campaign, customer_id=visit.customer_id, plan=plan,
                currency=visit.customer.currency, **_attribution(form))
    return _back(visit, done="plan", anchor="status")


async def promise_made(request: Request) -> Response:
    posted, refused = await _posted(request)
    if refused:
        return refused
    site, visit, form = posted
    window = visit.choices.promise_window
    try:
        when = date.fromisoformat(str(form.get("date", "")).strip())
    except ValueError:
        when = None
    if window is None or when is None or not window[0] <= when <= window[1] or visit.settled:
        return _back(visit, error="promise_date", anchor="promise")
    make_promise(site.store, campaign=visit.campaign, customer_id=visit.customer_id, until=when,
                 amount=visit.customer.balance, currency=visit.customer.currency, **_attribution(form))
    return _back(visit, done="promise", anchor="status")


async def dispute_opened(request: Request) -> Response:
    posted, refused = await _posted(request)
    if refused:
        return refused
    site, visit, form = posted
    reason = str(form.get("reason", ""))
    if reason not in DISPUTE_REASONS:
        return _back(visit, error="reason", anchor="dispute")
    open_dispute(site.store, campaign=visit.campaign, customer_id=visit.customer_id, reason=reason,
                 details=str(form.get("details", "")), **_attribution(form))
    return _back(visit, done="dispute", anchor="status")


async def preferences(request: Request) -> Response:
    posted, refused = await _posted(request)
    if refused:
        return refused
    site, visit, form = posted
    wants = {"letter": form.get("letter") == "yes"}
    if visit.customer.email:
        wants["email"] = form.get("email") == "yes"
    set_preferences(site.store, customer_id=visit.customer_id, email=visit.customer.email, wants=wants,
                    campaign=visit.campaign, **_attribution(form))
    return _back(visit, done="prefs", anchor="preferences")


async def beacon(request: Request) -> Response:
    """Video progress from the page's script (sendBeacon): the first time each quartile is reached."""
    site, visit, refused = _open(request)
    if refused:
        return Response(status_code=204)
    form = await _form(request, site, visit)
    if form is None:
        return Response(status_code=403)
    try:
        quartile = int(str(form.get("quartile", "")))
    except ValueError:
        return Response(status_code=400)
    if form.get("kind") != "video_played" or quartile not in QUARTILES:
        return Response(status_code=400)
    try:
        site.events.add("video_played", campaign=visit.campaign, channel="video",
                        variant=clean_variant(form.get("v")), customer_id=visit.customer_id,
                        data={"quartile": quartile},
                        dedupe_key=dedupe_digest("video", visit.campaign, visit.customer_id, quartile))
    except CommsError:
        return Response(status_code=400)
    return Response(status_code=204)


__all__ = ["beacon", "checkout_page", "checkout_submit", "dispute_opened", "page", "pay_page", "pay_return",
           "pay_start", "plan_chosen", "preferences", "promise_made", "video_page"]
