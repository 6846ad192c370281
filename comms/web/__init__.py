"""The web app (``comms serve``): personal pages, the payment flow, one-click unsubscribe and webhooks.

Routes (``<token>`` is the signed payment-link token; it is the only thing that names a customer):

    GET  /p/<token>                       the personal page (balance, invoices, video, letter, offers, forms)
    GET  /p/<token>/pay                   choose what to pay          POST: start a checkout (303)
    GET  /p/<token>/checkout/<id>         the demo provider's test-mode checkout    POST: pay or cancel
    GET  /p/<token>/pay/return            back from the creditor's portal (signed)
    POST /p/<token>/plan | /promise | /dispute | /preferences        the customer's answers (CSRF, 303)
    POST /p/<token>/events                video quartile beacons (JavaScript only enhances)
    GET  /p/<token>/video                 the video page; /video.mp4, /captions.vtt, /poster.jpg, /preview.webp
    GET  /p/<token>/letter.pdf            the letter
    GET  /u/<token>                       unsubscribe confirmation  POST: RFC 8058 one-click opt-out
    POST /hooks/sendgrid                  SendGrid event webhook (ECDSA-verified)
    POST /hooks/payments/redirect         the creditor portal's signed payment callback
    GET  /static/page.css, /static/page.js, /healthz

Modules: app (routes, start-up), site (per-process state, token -> visit), portfolio (snapshot indexes),
pagecontext (the template context), routes, files, hooks, security (headers, CSRF, rate limits, log
redaction), view (sandboxed templates, static assets), demo (links for the README's demo).
"""

from .app import create_app
from .demo import demo_links

__all__ = ["create_app", "demo_links"]
