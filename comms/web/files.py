"""Personal files and the one-click unsubscribe.

Files: the video (mp4, captions, poster, preview) and the letter PDF of the campaign and customer named in the
verified token, and nothing else: the path is built from the token's claims and a fixed file name, never from
the request (see :meth:`comms.web.site.Site.artifact`). Range requests work (video seeking). Responses are
``private, no-store``.

Unsubscribe (RFC 8058): ``GET /u/<token>`` only shows a confirmation page (link scanners fetch URLs);
``POST /u/<token>`` with ``List-Unsubscribe=One-Click`` opts the address out, without a CSRF token because
mail providers POST it without any cookie. It accepts any authentic token, even expired or revoked: opting
out never harms the customer and must keep working long after the e-mail was sent.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from ..errors import LinkError
from ..payments.preferences import opt_out
from ..payments.status import customer_state
from .pagecontext import page_context
from .responses import client_ip, html, neutral, redirect, session_of, site_of, too_many, browser_locale
from .routes import _open
from .security import token_tag
from .site import VIDEO_FILES

log = logging.getLogger("comms.web")


async def video_file(request: Request) -> Response:
    site, visit, refused = _open(request)
    if refused:
        return refused
    name = request.path_params["name"]
    path = site.artifact(visit, name)
    if path is None:
        return neutral(site, request)
    return FileResponse(path, media_type=VIDEO_FILES[name], headers={"cache-control": "private, no-store"})


async def letter_file(request: Request) -> Response:
    site, visit, refused = _open(request)
    if refused:
        return refused
    path = site.artifact(visit, "letter.pdf")
    if path is None:
        return neutral(site, request)
    site.events.add("letter_downloaded", campaign=visit.campaign, channel="page", customer_id=visit.customer_id)
    return FileResponse(path, media_type="application/pdf", filename="letter.pdf",
                        content_disposition_type="attachment", headers={"cache-control": "private, no-store"})


def _claims(request: Request):
    site = site_of(request)
    token = request.path_params["token"]
    if not site.limiter.allow(client_ip(request), token):
        return site, None, too_many(site, request)
    try:
        claims = site.signer.inspect(token)
    except LinkError as exc:
        log.info("unsubscribe link %s refused: %s", token_tag(token), exc.reason)
        site.limiter.failed(client_ip(request))
        return site, None, neutral(site, request)
    return site, claims, None


async def unsubscribe_page(request: Request) -> Response:
    site, claims, refused = _claims(request)
    if refused:
        return refused
    token = request.path_params["token"]
    visit = site.visit(token)
    if visit is not None:
        session, _ = session_of(site, request)
        ctx = page_context(site, visit, csrf=site.csrf.token(session, token))
    else:
        ctx = site.templates.neutral_context(browser_locale(request), {"name": site.creditor.name,
                                                                        "email": site.creditor.email,
                                                                        "phone": site.creditor.phone})
    ctx["unsub"] = {"action": f"/u/{token}", "done": request.query_params.get("done") == "1",
                    "page": f"/p/{token}" if visit is not None else None}
    return html(site.templates.render(visit.treatment if visit else "_base", "unsubscribe.html", ctx))


def _address(site, customer_id: str) -> str | None:
    """The address we write to (from the customer's newest snapshot), whatever the link's expiry."""
    state = customer_state(site.store, customer_id)
    if state.snapshot_id is None:
        return None
    found = site.portfolio.customer(state.snapshot_id, customer_id)
    return found.email if found else None


async def unsubscribe(request: Request) -> Response:
    site, claims, refused = _claims(request)
    if refused:
        return refused
    form = await request.form(max_files=0, max_fields=10)
    one_click = form.get("List-Unsubscribe") == "One-Click"
    if not one_click and not request.headers.get("content-type"):  # a sender that forgot the content type
        one_click = (await request.body()).strip() == b"List-Unsubscribe=One-Click"
    if not one_click:
        return PlainTextResponse("expected List-Unsubscribe=One-Click", status_code=400)
    address = _address(site, claims.customer_id)
    opt_out(site.store, customer_id=claims.customer_id, channel="email", address=address, source="one-click",
            campaign=claims.campaign, event_channel="email")
    if form.get("from") == "page":
        return redirect(f"/u/{request.path_params['token']}?done=1")
    return PlainTextResponse("unsubscribed")


__all__ = ["letter_file", "unsubscribe", "unsubscribe_page", "video_file"]
