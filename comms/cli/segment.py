"""``comms score`` and ``comms segment``: risk scores, trained models and segmentation of the newest snapshot.

Customer data shown here (names, reasons) is untrusted: every cell is a rich ``Text``, never markup.
"""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from .main import cli, console, pass_context


def _t(value) -> Text:
    return Text("" if value is None else str(value))


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


@cli.command("score")
@click.option("--train", is_flag=True,
              help="Fit a model on the snapshot's outcome column; report its AUC next to the scorecard's.")
@click.option("--use/--no-use", "use", default=None,
              help="With --train: make the new model the one scoring uses (or not). Alone: --use activates "
                   "the newest trained model, --no-use goes back to the scorecard.")
@click.option("--use-scorecard", is_flag=True, help="Go back to the transparent scorecard.")
@click.option("--test-share", type=click.FloatRange(0.05, 0.95), default=0.3, show_default=True,
              help="Share of the labelled customers held out to measure the AUCs.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the train/test split.")
@pass_context
def score_cmd(ctx, train: bool, use: bool | None, use_scorecard: bool, test_share: float, seed: int) -> None:
    """Score the newest snapshot 0-100 (green >= 80, yellow 60-79, red < 60) and say why.

    Uses the active trained model if there is one, else the transparent scorecard (segments/scorecard.yaml).

    Example: comms score --train --use
    """
    from ..segment.run import score_snapshot, train_model, use_model
    from ..segment.run import use_scorecard as back_to_scorecard

    if use_scorecard and use:
        raise InputError("--use and --use-scorecard contradict each other: pick one")
    store, settings = ctx.store, ctx.settings
    if train:
        with console.status("training the score model..."):
            record, report = train_model(store, settings, test_share=test_share, seed=seed, activate=bool(use))
        _print_training(record.id, report)
    elif use:
        record = use_model(store)
        console.print(Text(f"scoring now uses model {record.id} (AUC {record.auc_model:.3f} on "
                           f"{record.test_rows:,} held-out customers)"))
    if use_scorecard or (use is False and not train):
        back_to_scorecard(store)
        console.print("scoring now uses the transparent scorecard")

    with console.status("scoring..."):
        _, report = score_snapshot(store, settings)
    _print_scores(report)


def _print_training(model_id: int, report: dict) -> None:
    table = Table(title=f"Held-out AUC ({report['test_rows']:,} customers not used for training)")
    table.add_column("score")
    table.add_column("AUC", justify="right")
    table.add_row("trained model (logistic regression)", f"{report['auc_model']:.3f}")
    table.add_row("transparent scorecard", f"{report['auc_scorecard']:.3f}")
    if report.get("auc_boosting") is not None:
        table.add_row("gradient boosting (reference only)", f"{report['auc_boosting']:.3f}")
    console.print(table)
    console.print(Text(f"rows used: {report['rows_used']:,} labelled customers ({report['positives']:,} defaulted); "
                       f"trained on {report['train_rows']:,}, tested on {report['test_rows']:,}"))
    state = "active: scoring and segmentation use it" if report["active"] else \
        "not active: `comms score --use` makes it the one campaigns use"
    console.print(Text(f"model {model_id} saved to {report['path']} ({state})"))


def _print_scores(report: dict) -> None:
    total = report["customers"] or 1
    table = Table(title=f"Scores of snapshot {report['snapshot_id']} ({report['scorer']})")
    table.add_column("band")
    table.add_column("customers", justify="right")
    table.add_column("share", justify="right")
    for band, label in (("green", "green (>= 80)"), ("yellow", "yellow (60-79)"), ("red", "red (< 60)")):
        count = report["bands"][band]
        table.add_row(Text(label, style=band), f"{count:,}", _pct(count / total))
    console.print(table)
    if report["score"]["mean"] is not None:
        q = report["score"]["quartiles"]
        console.print(Text(f"mean score {report['score']['mean']}, quartiles {q[0]} / {q[1]} / {q[2]}"))
    if report["top_reasons"]:
        reasons = Table(title="Reasons that cost the most customers points")
        reasons.add_column("reason")
        reasons.add_column("customers", justify="right")
        for item in report["top_reasons"]:
            reasons.add_row(_t(item["reason"]), f"{item['customers']:,}")
        console.print(reasons)


@cli.command("segment")
@click.option("--explain", is_flag=True,
              help="Also show each segment's rule and example customers, the overlaps and the clusters.")
@click.option("--segments", "segments_file", metavar="FILE",
              help="Segments file to use (default: the segments_file setting, segments/default.yaml).")
@pass_context
def segment_cmd(ctx, explain: bool, segments_file: str | None) -> None:
    """Score, cluster and segment the newest snapshot; every customer lands in exactly one segment.

    The run is stored: campaigns read each customer's segment, treatment, band and reasons from it.

    Example: comms segment --explain --segments segments/default.yaml
    """
    from ..segment.run import example_customers, segment_snapshot

    with console.status("segmenting..."):
        run, summary = segment_snapshot(ctx.store, ctx.settings, segments_file)
    _print_segments(run.id, summary)
    if explain:
        _print_explain(summary, example_customers(ctx.store, run, summary))


def _print_segments(run_id: int, summary: dict) -> None:
    table = Table(title=f"Segments of snapshot {summary['snapshot_id']}: {summary['customers']:,} customers "
                        f"(run {run_id}, scores by {summary['scorer']})")
    table.caption = "* the fallback: everyone no rule above matched"
    for name, justify in (("segment", "left"), ("customers", "right"), ("share", "right"),
                          ("balance", "right"), ("bands r/y/g", "right"), ("treatment", "left"),
                          ("channels", "left")):
        table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=name in ("customers", "share"))
    for seg in summary["segments"]:
        balance = "\n".join(f"{amount} {cur}" for cur, amount in seg["balance"].items()) or "-"
        b = seg["bands"]
        table.add_row(_t(seg["name"] + ("*" if seg["fallback"] else "")), f"{seg['count']:,}",
                      _pct(seg["share"]), _t(balance), f"{b['red']:,}/{b['yellow']:,}/{b['green']:,}",
                      _t(seg["treatment"]), _t(", ".join(seg["channels"])))
    console.print(table)
    several = summary["overlaps"]["customers_matching_several"]
    if several:
        console.print(Text(f"{several:,} customers match more than one rule: the first match wins "
                           "(see --explain for the overlaps)"))


def _print_explain(summary: dict, examples: dict[str, list[dict]]) -> None:
    for seg in summary["segments"]:
        console.rule(Text(f"{seg['name']} -> {seg['treatment']}"))
        console.print(Text(f"rule: {seg['rule'] if seg['rule'] else '(fallback: everyone no rule above took)'}"))
        if seg["description"]:
            console.print(Text(seg["description"]))
        console.print(Text(f"{seg['count']:,} customers ({_pct(seg['share'])}); the rule matches "
                           f"{seg['matched']:,}; offers: {_offers(seg['offers'])}"))
        rows = examples.get(seg["name"], [])
        if rows:
            table = Table(show_edge=False)
            for col, justify in (("customer", "left"), ("name", "left"), ("balance", "right"),
                                 ("days past due", "right"), ("score", "right"), ("reasons", "left")):
                table.add_column(col, justify=justify)  # type: ignore[arg-type]
            for r in rows:
                balance = f"{r['balance']} {r.get('currency') or ''}".strip() if r.get("balance") is not None else ""
                table.add_row(_t(r.get("customer_id")), _t(r.get("name")), _t(balance), _t(r.get("days_past_due")),
                              _t(r.get("score")), _t(r.get("reasons")))
            console.print(table)
    _print_overlaps(summary["overlaps"])
    if summary.get("clustering"):
        _print_clusters(summary["clustering"])


def _offers(offers: dict) -> str:
    parts = []
    if offers.get("pay_in_full"):
        parts.append("pay in full")
    if d := offers.get("settlement_discount"):
        parts.append(f"{d['percent']}% discount if paid within {d['deadline_days']} days")
    if i := offers.get("instalments"):
        parts.append(f"instalments over {'/'.join(map(str, i['months']))} months (minimum {i['minimum']})")
    if p := offers.get("promise_to_pay"):
        parts.append(f"promise to pay within {p['max_days']} days")
    return ", ".join(parts)


def _print_overlaps(overlaps: dict) -> None:
    names = overlaps["segments"]
    if not names:
        return
    table = Table(title="Rule overlaps: customers matching both rules (diagonal: matching the rule at all)")
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for name, row in zip(names, overlaps["matrix"]):
        table.add_row(_t(name), *(f"{v:,}" for v in row))
    console.print(table)


def _print_clusters(clustering: dict) -> None:
    tried = ", ".join(f"k={k}: {v:.3f}" for k, v in clustering["silhouettes"].items())
    sil = f"{clustering['silhouette']:.3f}" if clustering["silhouette"] is not None else "n/a"
    console.print(Text(f"clusters: k = {clustering['k']}, silhouette {sil}" + (f" (tried {tried})" if tried else "")))
    table = Table(title="Cluster profiles in original units: mean (median)")
    table.add_column("cluster", justify="right")
    table.add_column("customers", justify="right")
    table.add_column("share", justify="right")
    for feature in clustering["features"]:
        table.add_column(feature, justify="right")
    for prof in clustering["profiles"]:
        cells = []
        for feature in clustering["features"]:
            stats = prof["features"][feature]
            cells.append(_t("-" if stats["mean"] is None else f"{_num(stats['mean'])} ({_num(stats['median'])})"))
        table.add_row(str(prof["cluster"]), f"{prof['count']:,}", _pct(prof["share"]), *cells)
    console.print(table)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
