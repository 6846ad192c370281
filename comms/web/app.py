"""The ASGI app: routes, middleware, start-up and shut-down.

Start-up builds the :class:`~comms.web.site.Site` (store migrated, link keys, segments, templates), loads
the newest snapshot's index so the first customer does not wait for it, moves what start-up loaded out of
the garbage collector's way (:func:`settle_garbage_collector`), and starts a task that writes buffered
events a few times a second, in a thread, so no page waits for a write; shut-down writes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..config import Settings
from ..store import Store
from . import files, hooks, routes
from .responses import neutral
from ..errors import CommsError
from .security import SecurityHeaders, redact_path
from .site import Site

log = logging.getLogger("comms.web")
FORM_BODY_LIMIT = 64 * 1024
EVENT_FLUSH_SECONDS = 0.25  # small batches: a write holds the interpreter lock for a few milliseconds at most
GC_YOUNG_THRESHOLD = 10_000  # new objects kept alive between young collections (Python's default: 700)
HOOK_BODY_LIMIT = 16 * 1024 * 1024
T = "/p/{token}"


async def static(request: Request) -> Response:
    found = request.app.state.site.templates.static(request.path_params["name"])
    if found is None:
        return PlainTextResponse("not found", status_code=404)
    body, media_type = found
    return Response(body, media_type=media_type, headers={"cache-control": "public, max-age=31536000, immutable"})


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def home(request: Request) -> Response:
    return neutral(request.app.state.site, request, 404)


async def server_error(request: Request, exc: Exception) -> Response:
    # the type only (and our own one-line message): a driver's message may quote query parameters
    detail = str(exc).splitlines()[0][:200] if isinstance(exc, CommsError) else ""
    log.error("error on %s %s: %s %s", request.method, redact_path(request.url.path), type(exc).__name__, detail)
    try:
        return neutral(request.app.state.site, request, 500, which="error")
    except Exception:  # the error page itself failed: say as little as possible
        return PlainTextResponse("Something went wrong. Please try again later.", status_code=500)


def route_table() -> list[Route]:
    return [
        Route(T, routes.page, methods=["GET"]),
        Route(T + "/pay", routes.pay_page, methods=["GET"]),
        Route(T + "/pay", routes.pay_start, methods=["POST"]),
        Route(T + "/pay/return", routes.pay_return, methods=["GET"]),
        Route(T + "/checkout/{checkout}", routes.checkout_page, methods=["GET"]),
        Route(T + "/checkout/{checkout}", routes.checkout_submit, methods=["POST"]),
        Route(T + "/plan", routes.plan_chosen, methods=["POST"]),
        Route(T + "/promise", routes.promise_made, methods=["POST"]),
        Route(T + "/dispute", routes.dispute_opened, methods=["POST"]),
        Route(T + "/preferences", routes.preferences, methods=["POST"]),
        Route(T + "/events", routes.beacon, methods=["POST"]),
        Route(T + "/video", routes.video_page, methods=["GET"]),
        Route(T + "/letter.pdf", files.letter_file, methods=["GET"]),
        Route(T + "/{name:str}", files.video_file, methods=["GET"]),
        Route("/u/{token}", files.unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", files.unsubscribe, methods=["POST"]),
        Route("/hooks/sendgrid", hooks.sendgrid, methods=["POST"], max_body_size=HOOK_BODY_LIMIT),
        Route("/hooks/payments/{provider}", hooks.payment_callback, methods=["POST"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/", home, methods=["GET"]),
    ]


def settle_garbage_collector() -> None:
    """What start-up loaded (modules, compiled templates, the snapshot index: some 150,000 objects) lives as
    long as the process: gc.freeze() keeps the collector from walking it again in every full collection, a
    pause of up to 100 ms for the pages waiting behind it. Young collections run less often (each page leaves
    a few dozen objects in reference cycles for the collector); their pauses stay around a millisecond."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def create_app(settings: Settings | None = None, store: Store | None = None, *, warm: bool = True,
               serving: bool = False) -> Starlette:
    """The micro-site, payment flow, one-click unsubscribe and webhooks as one ASGI app. ``serving``: this
    process does nothing else (``comms serve``), so the garbage collector is tuned for it.

    Example: uvicorn.run(create_app(Settings.load()), host="127.0.0.1", port=8000)
    """
    settings = settings or Settings.load()
    site = Site(settings, store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if warm:
            count = site.portfolio.warm()
            log.info("serving %d customers of the newest snapshot", count)
        if serving:
            settle_garbage_collector()

        async def flush_forever():
            while True:
                await asyncio.sleep(EVENT_FLUSH_SECONDS)
                try:  # in a thread: the loop keeps serving pages while the rows are written
                    await asyncio.to_thread(site.events.flush)
                except Exception as exc:  # keep serving; the buffer keeps the rows for the next try
                    log.error("writing events failed, kept for the next try: %s", exc)

        task = asyncio.create_task(flush_forever())
        try:
            yield
        finally:
            task.cancel()
            site.close()

    app = Starlette(routes=route_table(), lifespan=lifespan, max_body_size=FORM_BODY_LIMIT,
                    exception_handlers={500: server_error})
    app.state.site = site
    return SecurityHeadersApp(app, site)


class SecurityHeadersApp(SecurityHeaders):
    """The Starlette app wrapped in the security headers; ``.app.state.site`` stays reachable for tests."""

    def __init__(self, app: Starlette, site: Site):
        super().__init__(app, form_origins=site.provider.form_origins, hsts=site.https)
        self.site = site
        self.state = app.state


__all__ = ["create_app", "route_table", "settle_garbage_collector"]
