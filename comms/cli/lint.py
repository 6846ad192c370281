"""``comms lint``: render every template of every channel for sample customers and report what is wrong.

Each channel module ``comms.render.<channel>`` may provide ``lint(settings, segments, treatments,
customers) -> list[problem]`` (problems have ``severity``, ``line()``); this command finds them, so a new
channel's checks run here without touching this file.
"""

from __future__ import annotations

from .channels import channel_module

import click
from rich.text import Text

from ..errors import CommsError, InputError
from ..models import Channel
from .main import cli, console, pass_context


class LintFailed(CommsError):
    """At least one template would send a broken, unsafe or non-compliant message."""


def _linters(only: tuple[str, ...]):
    for channel in Channel:
        if only and channel.value not in only:
            continue
        module = channel_module(channel.value)
        if hasattr(module, "lint"):
            yield channel.value, module.lint


@cli.command("lint")
@click.argument("treatment", required=False)
@click.option("--channel", "channels", multiple=True, type=click.Choice([c.value for c in Channel]),
              help="Only this channel (repeatable; default: every channel that has checks).")
@click.option("--locale", "locales", multiple=True,
              help="Only sample customers of this locale (repeatable; default: all six and a hostile name).")
@pass_context
def lint_cmd(ctx, treatment: str | None, channels: tuple[str, ...], locales: tuple[str, ...]) -> None:
    """Render every template for a sample customer of every segment in every locale and check the results.

    Fails on undefined variables, MJML errors, HTML over 90 KB, images without alt text, a missing text
    part, payment link or opt-out, and http: links. Run it after every template edit.

    Example: comms lint final_notice
    """
    from ..render.samples import hostile_customer, sample_customers
    from ..segment.config import load_segments, treatment_names

    settings = ctx.settings
    segments = load_segments(settings.segments_file, settings.templates_dir)
    known = treatment_names(settings.templates_dir)
    if treatment and treatment not in known:
        raise InputError(f"unknown treatment {treatment!r}; known: {', '.join(known)}")
    treatments = [treatment] if treatment else known
    customers = sample_customers()
    if locales:
        wanted = {loc.split("-")[0] for loc in locales}
        customers = [c for c in customers if c.locale.split("-")[0] in wanted] + [hostile_customer()]
    problems = []
    checked = []
    for channel, lint in _linters(channels):
        checked.append(channel)
        problems.extend(lint(settings, segments, treatments, customers))
    if not checked:
        raise InputError("no channel has checks to run" + (f" among {', '.join(channels)}" if channels else ""))
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        console.print(Text(problem.line(), style="red" if problem.severity == "error" else "yellow"),
                      soft_wrap=True)
    renders = len(treatments) * len(segments.segments) * len(customers)
    summary = (f"{len(treatments)} treatment(s) x {len(segments.segments)} segments x {len(customers)} sample "
               f"customers, channels {', '.join(checked)} ({renders} renders each)")
    if errors:
        raise LintFailed(f"lint failed: {len(errors)} problem(s) in {summary}")
    console.print(Text(f"ok: {summary}; {len(problems)} warning(s)", style="green"), soft_wrap=True)
