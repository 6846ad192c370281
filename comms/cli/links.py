"""``comms links``: sign, check and revoke payment links, rotate their keys (operator tools)."""

from __future__ import annotations

from datetime import timedelta

import click

from ..errors import InputError
from ..payments import LinkSigner, extract_token, revoke_customer, revoke_token, rotate_key_file, verify_link
from .main import cli, pass_context


@cli.group("links")
def links_group() -> None:
    """Payment links: signed, encrypted, expiring tokens that open one customer's page.

    Example: comms links sign --campaign spring-2026 --customer C0001234
    """


@links_group.command("sign")
@click.option("--campaign", required=True, help="Campaign name the link belongs to.")
@click.option("--customer", "customer_id", required=True, help="Customer id the link opens.")
@click.option("--ttl-days", type=click.IntRange(min=1), default=None,
              help="Days the link stays valid (default: link_ttl_days, 60).")
@pass_context
def sign_cmd(ctx, campaign: str, customer_id: str, ttl_days: int | None) -> None:
    """Print the payment link of one customer in one campaign (for support and tests).

    Example: comms links sign --campaign spring-2026 --customer C0001234 --ttl-days 30
    """
    signer = LinkSigner.from_settings(ctx.settings)
    token = signer.sign(campaign, customer_id, ttl=timedelta(days=ttl_days) if ttl_days else None)
    click.echo(signer.url(token))


@links_group.command("verify")
@click.argument("token_or_url")
@pass_context
def verify_cmd(ctx, token_or_url: str) -> None:
    """Say whom a link opens and until when, or why it does not open (exit status 2).

    The reason is shown here because this is the operator's view; a customer only ever sees a neutral page.

    Example: comms links verify https://pay.example.com/p/AQE9pcE_srpy...
    """
    signer = LinkSigner.from_settings(ctx.settings)
    claims = verify_link(ctx.store, signer, token_or_url)
    click.echo(f"campaign  {claims.campaign}")
    click.echo(f"customer  {claims.customer_id}")
    click.echo(f"issued    {claims.issued_at.isoformat()}")
    click.echo(f"expires   {claims.expires_at.isoformat()}")
    click.echo(f"key       {claims.key_id}")


@links_group.command("revoke")
@click.argument("token_or_url", required=False)
@click.option("--customer", "customer_id", help="Revoke every link issued to this customer so far.")
@click.option("--reason", default="revoked by operator", show_default=True, help="Why (kept for the audit).")
@pass_context
def revoke_cmd(ctx, token_or_url: str | None, customer_id: str | None, reason: str) -> None:
    """Revoke one link, or every link a customer has been sent so far.

    A link is checked first (a mistyped link would otherwise be revoked silently, to no effect); an
    expired link can still be revoked. Links issued to the customer later work again.

    Example: comms links revoke --customer C0001234 --reason "paid in branch"
    """
    if bool(token_or_url) == bool(customer_id):
        raise InputError("give either a link (TOKEN_OR_URL) or --customer ID, not both or neither")
    signer = LinkSigner.from_settings(ctx.settings)
    if customer_id:
        revoke_customer(ctx.store, signer, customer_id, reason)
        click.echo(f"revoked every link issued so far to customer {customer_id}")
        return
    token = extract_token(token_or_url)
    claims = signer.inspect(token)
    revoke_token(ctx.store, token, reason)
    click.echo(f"revoked the link of customer {claims.customer_id} in campaign {claims.campaign} "
               f"(other links of this customer still work)")


@links_group.command("rotate")
@pass_context
def rotate_cmd(ctx) -> None:
    """Add a new link key that signs from now on; older keys keep verifying the links already sent.

    Works on the key file under the home folder. When keys come from COMMS_LINK_KEYS, it explains what
    to change instead (exit status 2): every machine must get the same new key.

    Example: comms links rotate
    """
    done = rotate_key_file(ctx.settings)
    older = [k.name for k in done.keys.keys[1:]]
    names = ", ".join(older) + (" still verify" if len(older) > 1 else " still verifies")
    if done.created:
        click.echo(f"created {done.keys.path} with key {done.added.name} (mode 0600); it signs new links")
        return
    click.echo(f"added key {done.added.name} to {done.keys.path}: it signs new links from now on; "
               f"{names} links already sent")
    click.echo(f"remove an old key from the file only after its links have expired "
               f"(link_ttl_days = {ctx.settings.link_ttl_days})")
