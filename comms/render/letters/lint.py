"""``comms lint`` for letters: every treatment, every segment's offers, every locale, hostile names too.

Lint renders what a campaign would render (the same renderer, sandbox, fetcher and limits) and reports:

* undefined variables, template syntax, time, size and page limits (errors, like in a campaign);
* anything a template tries to load besides media/ files and data: URLs (an error: it is never fetched,
  so the letter would silently lack it);
* customer data that came out unescaped (``<script`` in the HTML of the hostile sample customer);
* a block marked ``<!--static-->`` whose text changes with the customer (checked against a twin with
  another name and id; a warning: it is laid out for every letter instead of once, and the mark promises
  something the template does not keep);
* words missing in a language (a warning: English fills the gap, the customer sees mixed languages).
"""

from __future__ import annotations

from dataclasses import replace

from ...errors import CommsError, SegmentConfigError
from ..email_lint import LintProblem
from .compose import letter_context, letter_templates
from .engine import STATIC

CHANNEL = "letter"


def lint_letters(settings, segments, treatments: list[str], customers: list) -> list[LintProblem]:
    """Render every treatment for every customer in every segment; collect problems, merged by message."""
    from ...payments import LinkSigner
    from ...segment.config import load_treatment
    from ..context import ContextBuilder
    from ..letter import LetterRenderer
    from ..strings import missing_keys

    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "lint")
    renderer = LetterRenderer(settings, segments)
    found: dict[tuple[str, str, str], LintProblem] = {}

    def report(severity: str, treatment: str, message: str, where: str = "") -> None:
        problem = found.setdefault((severity, treatment, message), LintProblem(severity, treatment, CHANNEL, message))
        if where and where not in problem.where:
            problem.where.append(where)

    for treatment in treatments:
        try:
            templates = letter_templates(settings.templates_dir, treatment)
            if treatment not in builder.treatments:  # a treatment no segment uses yet: lint it all the same
                builder.treatments[treatment] = load_treatment(settings.templates_dir, treatment)
        except (CommsError, SegmentConfigError) as exc:
            report("error", treatment, str(exc))
            continue
        for locale in sorted({c.locale for c in customers if not c.locale.startswith("en")}):
            gaps = sorted(k for k in missing_keys(settings.templates_dir, treatment, locale)
                          if k.startswith(f"{CHANNEL}."))
            if gaps:
                report("warning", treatment, f"{locale}: words missing, English used: {', '.join(gaps)}")
        contexts, where_of, personal = [], {}, set()
        for segment in segments.segments:
            builder.segments[segment.name] = segment.model_copy(update={"treatment": treatment})
            for customer in customers:
                where = f"{segment.name}/{customer.locale}/{customer.customer_id}"
                try:
                    context = builder.build(customer, segment.name)
                    html = templates.article(letter_context(context, "letter-0", renderer.beneficiary))
                except (CommsError, ValueError) as exc:
                    report("error", treatment, str(exc), where)
                    continue
                if "<script" in html:
                    report("error", treatment, "customer data printed without escaping (<script in the HTML)", where)
                twin = replace(customer, customer_id=f"{customer.customer_id}-TWIN", name=f"{customer.name} Twin",
                               given_name=f"{customer.given_name or customer.name} Twin")
                twin_html = templates.article(letter_context(builder.build(twin, segment.name), "letter-0",
                                                             renderer.beneficiary))
                for number, (a, b) in enumerate(zip(STATIC.findall(html), STATIC.findall(twin_html))):
                    if a != b and (customer.locale, number) not in personal:
                        personal.add((customer.locale, number))
                        report("warning", treatment, f"static block {number + 1} changes with the customer: "
                                                     "remove <!--static--> or the personal data in it", where)
                where_of[id(context)] = where
                contexts.append(context)
            builder.segments[segment.name] = segment
        blocked_before = set(renderer.engine.fetcher.blocked)
        for _ in renderer.render_many(contexts, on_error=lambda ctx, exc: report(
                "error", treatment, str(exc), where_of.get(id(ctx), ""))):
            pass
        for url in sorted(set(renderer.engine.fetcher.blocked) - blocked_before):
            report("error", treatment, f"loads {url[:80]}: letters may only use media/ files and data: URLs")
    return list(found.values())
