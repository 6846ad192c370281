"""Small helpers every route shares: client IP, CSRF session, neutral page, redirects, HTML responses."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .security import CSRF_COOKIE
from .site import Site

_SESSION = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_LANGS = {"en": "en-US", "it": "it-IT", "pl": "pl-PL", "ru": "ru-RU", "he": "he-IL", "iw": "he-IL",
          "zh": "zh-CN"}


def site_of(request: Request) -> Site:
    return request.app.state.site


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "-"


def session_of(site: Site, request: Request) -> tuple[str, bool]:
    """(CSRF session id, True when it is new and must be set as a cookie)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if _SESSION.match(value):
        return value, False
    return site.csrf.new_session(), True


def browser_locale(request: Request) -> str:
    """The first of the site's languages the browser asks for (Accept-Language), else English."""
    header = request.headers.get("accept-language", "")[:200]
    weighted = []
    for i, part in enumerate(header.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        lang = tag.strip().split("-")[0].lower()
        if lang in _LANGS:
            weighted.append((-weight, i, _LANGS[lang]))
    return min(weighted)[2] if weighted else "en-US"


def html(body: str, status: int = 200, *, cookie: str | None = None) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status)
    if cookie:
        response.headers.append("set-cookie", cookie)
    return response


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a form, the browser GETs the result (post/redirect/get)."""
    return RedirectResponse(url, status_code=303)


def neutral(site: Site, request: Request, status: int = 404, *, which: str = "unavailable") -> Response:
    """The same page for every link that does not open (or any other refusal): it reveals nothing."""
    ctx = site.templates.neutral_context(browser_locale(request), _creditor(site))
    ctx["which"] = which
    return html(site.templates.render("_base", "unavailable.html", ctx), status)


def _creditor(site: Site) -> dict:
    c = site.creditor
    return {"name": c.name, "address_lines": list(c.address_lines), "email": c.email, "phone": c.phone,
            "website": c.website, "iban": c.iban, "bic": c.bic}


def too_many(site: Site, request: Request) -> Response:
    response = neutral(site, request, 429, which="busy")
    response.headers["retry-after"] = "30"
    return response


__all__ = ["browser_locale", "client_ip", "html", "neutral", "redirect", "session_of", "site_of", "too_many"]
