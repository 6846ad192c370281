"""``comms preview``: one customer's output of one channel, written to files for a person to look at.

Each channel's module (comms/cli/channels.py: ``comms.render.<channel>``, the web app's for pages) exposes
``preview(context, *, settings, out_dir, segments, options) -> list[Path]`` (the files it wrote).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from ..errors import InputError, StoreError
from ..models import Channel
from .channels import channel_module
from .main import cli, console, pass_context

PREVIEW_CAMPAIGN = "preview"


def _pick_customer(ctx, customer_id: str | None, segment: str | None, locale: str | None):
    """(customer, segment name or None): a real one from the newest snapshot, else the fixed sample."""
    from ..render.context import customers_from_snapshot
    from ..render.samples import sample_customer
    from ..store.snapshots import get_segment_run, get_snapshot, load_assignments

    try:
        snapshot = get_snapshot(ctx.store)
    except StoreError:
        if customer_id:
            raise
        return sample_customer(locale or "en-US"), segment
    try:
        run = get_segment_run(ctx.store, snapshot_id=snapshot.id)
        assignments = load_assignments(run)[["customer_id", "segment"]]
    except StoreError:
        assignments = None
    if customer_id:
        found = customers_from_snapshot(snapshot, [customer_id])
        if customer_id not in found:
            raise InputError(f"customer {customer_id!r} is not in snapshot {snapshot.id}")
        if assignments is not None and segment is None:
            match = assignments[assignments.customer_id == customer_id]
            segment = str(match.segment.iloc[0]) if len(match) else None
        return found[customer_id], segment
    candidates = assignments
    if candidates is not None and segment:
        candidates = candidates[candidates.segment == segment]
    if candidates is None or candidates.empty:
        return sample_customer(locale or "en-US"), segment
    ids = list(candidates.customer_id.head(2000))
    pool = customers_from_snapshot(snapshot, ids)
    want = (locale or "").split("-")[0]
    chosen = next((c for c in (pool[i] for i in ids if i in pool) if not want or c.locale.startswith(want)),
                  None) or pool[ids[0]]
    return chosen, segment


@cli.command("preview")
@click.option("--channel", type=click.Choice([c.value for c in Channel]), required=True)
@click.option("--treatment", help="Treatment folder in templates/ (default: the segment's).")
@click.option("--customer", "customer_id", help="A customer id of the newest snapshot.")
@click.option("--segment", help="Preview for a customer of this segment (and its offers).")
@click.option("--locale", help="Render in this locale (e.g. he-IL), whatever the customer's own.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the files (default <home>/preview/<channel>).")
@click.option("--send-test", metavar="ADDRESS", help="E-mail only: also send the preview to this address.")
@pass_context
def preview_cmd(ctx, channel: str, treatment: str | None, customer_id: str | None, segment: str | None,
                locale: str | None, out_dir: Path | None, send_test: str | None) -> None:
    """Render one customer's e-mail, letter, page or video and print where the files are.

    Without --customer, a customer of the segment (or of the first segment using the treatment) is picked from
    the newest snapshot, or a fixed sample customer when nothing is imported yet.

    Example: comms preview --channel email --treatment final_notice --locale he-IL
    """
    from dataclasses import replace

    from ..payments import LinkSigner
    from ..render.context import ContextBuilder
    from ..segment.config import load_segments

    if customer_id and segment:
        raise InputError("--customer and --segment both pick the customer: give one")
    if send_test and channel != "email":
        raise InputError("--send-test works with --channel email only")
    settings = ctx.settings
    segments = load_segments(settings.segments_file, settings.templates_dir)
    if treatment and treatment not in segments.treatments:
        raise InputError(f"unknown treatment {treatment!r}; known: {', '.join(sorted(segments.treatments))}")
    if segment and segment not in segments.names:
        raise InputError(f"unknown segment {segment!r}; known: {', '.join(segments.names)}")
    if segment is None and treatment:
        segment = next(s.name for s in segments.segments if s.treatment == treatment) \
            if any(s.treatment == treatment for s in segments.segments) else None
    customer, segment = _pick_customer(ctx, customer_id, segment, locale)
    segment = segment or segments.names[-1]
    if locale:
        from ..render.formatting import locale_for
        try:
            locale_for(locale)
        except ValueError:
            raise InputError(f"unknown locale {locale!r}") from None
        customer = replace(customer, locale=locale)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), PREVIEW_CAMPAIGN)
    if treatment:
        builder.segments[segment] = builder.segments[segment].model_copy(update={"treatment": treatment})
    context = builder.build(customer, segment)
    renderer = channel_module(channel)
    out = out_dir or settings.home / "preview" / channel
    out.mkdir(parents=True, exist_ok=True)
    files = renderer.preview(context, settings=settings, out_dir=out, segments=segments,
                             options={"send_test": send_test})
    console.print(Text(f"{channel} preview of customer {customer.customer_id} ({customer.locale}, segment "
                       f"{segment}, treatment {context['treatment']['name']}):"))
    for path in files:
        console.print(Text(f"  {path}"))
