"""``comms serve``: the micro-site, payment flow, one-click unsubscribe and webhooks (uvicorn)."""

from __future__ import annotations

import logging

import click

from .main import cli, console, pass_context


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes (each keeps its own caches and rate limits).")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-For/-Proto are trusted (for client IPs behind a proxy).")
@click.option("--demo-links", is_flag=True, help="Print one personal link per segment before serving.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@pass_context
def serve_cmd(ctx, host: str, port: int, workers: int, forwarded_allow_ips: str, demo_links: bool,
              log_level: str) -> None:
    """Serve personal pages, payments, one-click unsubscribe and webhooks until interrupted.

    Links sent to customers carry base_url (COMMS_BASE_URL, the address customers reach); --demo-links uses
    it too, or this server's own address when it is not set. Open a printed link in a browser. Access logs
    show a digest of each token, never the token.

    Example: comms serve --port 8000 --demo-links
    """
    import os

    import uvicorn

    from ..web import create_app
    from ..web.demo import demo_links as make_links

    settings = ctx.settings
    ctx.store  # migrate before forking workers
    # without a configured base_url, links point at this server as started
    configured = settings.get("base_url", default=None)
    base = settings.base_url if configured else f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    if demo_links:
        for segment, _customer, url in make_links(settings, ctx.store, base_url=base):
            console.print(f"{segment:<12} {url}", soft_wrap=True)
    logging.basicConfig(level=getattr(logging, log_level.upper()), format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    console.print(f"serving on http://{host}:{port} (links use {base})")
    common = dict(host=host, port=port, access_log=False, proxy_headers=True,
                  forwarded_allow_ips=forwarded_allow_ips, log_level=log_level, server_header=False)
    if workers == 1:
        uvicorn.run(create_app(settings, serving=True), **common)
    else:
        os.environ["COMMS_HOME"] = str(settings.home)
        uvicorn.run("comms.web.factory:app", factory=True, workers=workers, **common)
