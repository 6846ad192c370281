"""Segments: validation of the segments file, one segment per customer, overlaps, clustering."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from comms.errors import RuleError, SegmentConfigError
from comms.segment.assignment import assign
from comms.segment.cluster import fit_clusters
from comms.segment.config import Clustering, load_segments, load_treatment
from comms.segment.score import score_customers
from comms.segment.scorecard import load_scorecard
from comms.segment.synthetic import blobs, synthetic_features

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SHIPPED = ("early_reminder", "firm_notice", "final_notice", "hardship_plan")

THREE_RULES = """
segments:
  - name: late
    rule: days_past_due > 60
    treatment: final_notice
    channels: [email, letter]
    offers: {settlement_discount: {percent: 10, deadline_days: 14}}
  - name: disputed_or_late
    rule: dispute or days_past_due > 30
    treatment: firm_notice
    channels: [letter]
    offers: {instalments: {months: [3, 6], minimum: "25.00"}, promise_to_pay: {max_days: 30}}
  - name: big
    rule: balance >= 1000
    treatment: hardship_plan
    channels: [email]
  - name: rest
    fallback: true
    treatment: early_reminder
    channels: [email, page]
"""


def write(tmp_path, text: str, name: str = "segments.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def small_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "days_past_due": [90, 45, 10, 0, 70, 5],
        "dispute": [False, False, True, False, True, False],
        "balance": [Decimal("50.00"), Decimal("2000.00"), Decimal("10.00"), Decimal("5000.00"),
                    Decimal("1500.00"), Decimal("20.00")],
        "currency": ["EUR", "EUR", "EUR", "PLN", "EUR", "EUR"],
    })


def no_scores(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"score": np.full(len(frame), 90.0), "band": ["green"] * len(frame),
                         "reasons": [""] * len(frame)}, index=frame.index)


def test_shipped_segments_file_and_treatments_load():
    config = load_segments(ROOT / "segments" / "default.yaml", TEMPLATES)
    assert set(SHIPPED) <= set(config.treatments)
    assert config.segments[-1].fallback
    for name in SHIPPED:
        treatment = load_treatment(TEMPLATES, name)
        assert treatment.title["en"] and treatment.description and treatment.tone
        assert treatment.title_for("it-IT") != treatment.title_for("en-GB")


def test_every_customer_lands_in_exactly_one_segment_first_match_wins(tmp_path):
    config = load_segments(write(tmp_path, THREE_RULES), TEMPLATES)
    frame = small_frame()
    assignments, summary = assign(frame, config, no_scores(frame))
    assert assignments["customer_id"].tolist() == frame["customer_id"].tolist()
    assert assignments["segment"].tolist() == ["late", "disputed_or_late", "disputed_or_late", "big", "late", "rest"]
    assert assignments["treatment"].tolist() == ["final_notice", "firm_notice", "firm_notice", "hardship_plan",
                                                 "final_notice", "early_reminder"]
    counts = {s["name"]: s["count"] for s in summary["segments"]}
    assert counts == {"late": 2, "disputed_or_late": 2, "big": 1, "rest": 1}
    assert sum(counts.values()) == len(frame)


def test_overlaps_count_customers_matching_several_rules(tmp_path):
    config = load_segments(write(tmp_path, THREE_RULES), TEMPLATES)
    frame = small_frame()
    _, summary = assign(frame, config, no_scores(frame))
    overlaps = summary["overlaps"]
    assert overlaps["segments"] == ["late", "disputed_or_late", "big"]
    # late: a, e; disputed_or_late: a, b, c, e; big: b, d, e
    assert overlaps["matrix"] == [[2, 2, 1], [2, 4, 2], [1, 2, 3]]
    assert overlaps["customers_matching_several"] == 3  # a, b, e
    late = summary["segments"][0]
    assert late["matched"] == 2 and late["count"] == 2


def test_summary_sums_balances_exactly_per_currency(tmp_path):
    config = load_segments(write(tmp_path, THREE_RULES), TEMPLATES)
    frame = small_frame()
    _, summary = assign(frame, config, no_scores(frame))
    by_name = {s["name"]: s for s in summary["segments"]}
    assert by_name["late"]["balance"] == {"EUR": "1550.00"}
    assert by_name["big"]["balance"] == {"PLN": "5000.00"}
    assert by_name["late"]["examples"] == ["a", "e"]
    assert by_name["late"]["offers"]["settlement_discount"] == {"percent": "10", "deadline_days": 14}


def test_rules_can_use_score_band_and_cluster(tmp_path):
    path = write(tmp_path, """
clustering: {features: [balance, days_past_due, payment_ratio], k: 3, seed: 1}
segments:
  - {name: red, rule: "band == 'red' and score < 50", treatment: final_notice, channels: [letter]}
  - {name: biggest_cluster, rule: "cluster == 0", treatment: firm_notice, channels: [email]}
  - {name: rest, fallback: true, treatment: early_reminder, channels: [email]}
""")
    config = load_segments(path, TEMPLATES)
    frame = blobs(n_per=50).assign(customer_id=[f"c{i}" for i in range(150)])
    scores = no_scores(frame)
    scores.loc[:9, ["score", "band"]] = [40.0, "red"]
    assignments, summary = assign(frame, config, scores)
    assert (assignments["segment"][:10] == "red").all()
    assert assignments["cluster"].notna().all() and set(assignments["cluster"]) == {0, 1, 2}
    assert summary["clustering"]["k"] == 3
    expected = (assignments["cluster"] == 0) & (assignments["segment"] != "red")
    assert ((assignments["segment"] == "biggest_cluster") == expected).all()
    assert set(assignments.loc[expected.to_numpy() == False, "segment"]) <= {"red", "rest"}  # noqa: E712


def test_clustering_picks_k_by_silhouette_and_profiles_in_original_units():
    frame = blobs(n_per=300)
    result = fit_clusters(frame, Clustering(features=["balance", "days_past_due", "payment_ratio"], k_range=(2, 6)))
    assert result.k == 3
    assert result.silhouette == max(result.silhouettes.values()) and result.silhouette > 0.7
    assert sorted(p["count"] for p in result.profiles) == [300, 300, 300]
    medians = sorted(p["features"]["balance"]["median"] for p in result.profiles)
    assert medians[0] == pytest.approx(200, abs=30) and medians[2] == pytest.approx(20000, abs=300)
    dpd = sorted(p["features"]["days_past_due"]["mean"] for p in result.profiles)
    assert dpd == pytest.approx([5, 60, 200], abs=3)


def test_clustering_samples_large_portfolios_and_labels_everyone():
    frame = synthetic_features(60_000, seed=4)
    result = fit_clusters(frame, Clustering(features=["balance", "days_past_due"], k=4, sample=5000))
    assert len(result.labels) == 60_000 and result.k == 4
    counts = [p["count"] for p in result.profiles]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 60_000  # ids by size, largest first


def test_default_segments_on_a_synthetic_portfolio():
    frame = synthetic_features(3000, seed=9)
    config = load_segments(ROOT / "segments" / "default.yaml", TEMPLATES)
    scores = score_customers(frame, load_scorecard(ROOT / "segments" / "scorecard.yaml"))
    assignments, summary = assign(frame, config, scores)
    assert len(assignments) == 3000 and assignments["segment"].notna().all()
    assert {s["name"] for s in summary["segments"] if s["count"]} == set(config.names)
    assert assignments.loc[frame["days_past_due"] > 90, "treatment"].isin(["final_notice", "hardship_plan"]).all()
    assert summary["clustering"]["k"] >= 2 and summary["clustering"]["profiles"]


@pytest.mark.parametrize("change, message", [
    (("treatment: hardship_plan", "treatment: gentle_nudge"),
     "segment 'big': unknown treatment 'gentle_nudge' (folders in"),
    (("rule: balance >= 1000", "rule: balance >= and 1"),
     "segment 'big': rule 'balance >= and 1': syntax error at column 12"),
    (("rule: balance >= 1000", "rule: open('x')"), "unknown function 'open'"),
    (("    fallback: true\n", ""), "segments[3] (rest): a segment needs a rule"),
    (("channels: [email]", "channels: [fax]"), "segments[2] (big).channels[0]"),
    (("percent: 10", "percent: 120"), "segments[0] (late).offers.settlement_discount.percent"),
    (('minimum: "25.00"', 'minimum: "-1"'), "segments[1] (disputed_or_late).offers.instalments.minimum"),
    (("name: rest", "name: late"), "segment name 'late' is used twice"),
])
def test_segments_file_mistakes_are_one_line(tmp_path, change, message):
    text = THREE_RULES.replace(*change)
    assert text != THREE_RULES
    with pytest.raises((SegmentConfigError, RuleError)) as err:
        load_segments(write(tmp_path, text), TEMPLATES)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_or_misplaced_fallback_is_refused(tmp_path):
    no_fallback = THREE_RULES.replace("    fallback: true\n", "    rule: 'True'\n")
    with pytest.raises(SegmentConfigError, match="no fallback segment"):
        load_segments(write(tmp_path, no_fallback), TEMPLATES)
    first = THREE_RULES.split("  - name: rest")[0].replace(
        "segments:\n", "segments:\n  - {name: rest, fallback: true, treatment: early_reminder, channels: [email]}\n")
    with pytest.raises(SegmentConfigError, match="must be the last one"):
        load_segments(write(tmp_path, first), TEMPLATES)


def test_rule_reading_an_unknown_column_names_the_available_ones(tmp_path):
    config = load_segments(write(tmp_path, THREE_RULES.replace("balance >= 1000", "balanse >= 1000")), TEMPLATES)
    frame = small_frame()
    with pytest.raises(SegmentConfigError, match=r"segment 'big': rule 'balanse >= 1000' reads unknown column "
                                                 r"'balanse' \(available: .*balance"):
        assign(frame, config, no_scores(frame))
