"""Risk scores: the transparent scorecard, its bands and reasons, and the trained model next to it."""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from comms.errors import ModelError, RuleError, SegmentConfigError
from comms.models import band_for
from comms.segment.model import fit_model
from comms.segment.score import score_customers, score_report
from comms.segment.scorecard import load_scorecard
from comms.segment.synthetic import synthetic_features

DEFAULT_SCORECARD = "segments/scorecard.yaml"


def write(tmp_path, text: str, name: str = "scorecard.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


STEP_CARD = """
start: 100
factors:
  - name: step
    value: step
    bands:
      - {below: 1, points: 0}
      - {below: 2, points: -20, reason: "twenty"}
      - {below: 3, points: -20.1, reason: "just over twenty"}
      - {below: 4, points: -40, reason: "forty"}
      - {below: 5, points: -40.1, reason: "just over forty"}
      - {points: -250, reason: "everything"}
"""


def test_bands_at_their_boundaries(tmp_path):
    card = load_scorecard(write(tmp_path, STEP_CARD))
    scores = card.score(pd.DataFrame({"step": [0, 1, 2, 3, 4, 5]}))
    assert scores["score"].tolist() == [100.0, 80.0, 79.9, 60.0, 59.9, 0.0]
    assert scores["band"].tolist() == ["green", "green", "yellow", "yellow", "red", "red"]
    assert scores["band"].tolist() == [band_for(s) for s in scores["score"]]


CARD = """
start: 100
factors:
  - name: lateness
    value: days_past_due
    bands:
      - {below: 1, points: 0}
      - {below: 61, points: -12, reason: "1-60 days past due"}
      - {below: 91, points: -25, reason: "61-90 days past due"}
      - {points: -45, reason: "over 90 days past due"}
  - name: history
    value: payment_ratio
    missing: {points: -5, reason: "no payment history"}
    bands:
      - {below: 0.5, points: -12, reason: "paid under half"}
      - {points: 0}
  - name: promises
    value: broken_promises
    bands:
      - {below: 1, points: 0}
      - {points: -8, reason: "broken promise"}
  - name: dispute
    value: dispute
    bands:
      - {below: 1, points: 0}
      - {points: -12, reason: "open dispute"}
"""


def test_reasons_are_the_biggest_deductions_in_order(tmp_path):
    card = load_scorecard(write(tmp_path, CARD))
    frame = pd.DataFrame({"days_past_due": [75, 0, 10, 200], "payment_ratio": [0.2, 1.0, np.nan, 0.9],
                          "broken_promises": [1, 0, 0, 0], "dispute": [True, False, False, False]})
    scores = card.score(frame)
    assert scores["score"].tolist() == [43.0, 100.0, 83.0, 55.0]
    # four deductions: -25, -12, -12 (tie: the factor listed first wins), -8 left out
    assert scores["reasons"].iloc[0] == "61-90 days past due (-25); paid under half (-12); open dispute (-12)"
    assert scores["reasons"].iloc[1] == ""
    assert scores["reasons"].iloc[2] == "1-60 days past due (-12); no payment history (-5)"
    assert scores["reasons"].iloc[3] == "over 90 days past due (-45)"


def test_decimal_balances_score_like_numbers(tmp_path):
    card = load_scorecard(write(tmp_path, """
factors:
  - name: exposure
    value: balance
    bands:
      - {below: 1000, points: 0}
      - {points: -10, reason: "balance 1,000 or more"}
"""))
    frame = pd.DataFrame({"balance": [Decimal("999.99"), Decimal("1000.00")]})
    assert card.score(frame)["score"].tolist() == [100.0, 90.0]


def test_default_scorecard_scores_every_customer_with_worded_reasons():
    frame = synthetic_features(2000, seed=1)
    scores = score_customers(frame, load_scorecard(DEFAULT_SCORECARD))
    assert len(scores) == 2000 and scores.index.equals(frame.index)
    assert scores["score"].between(0, 100).all()
    assert set(scores["band"]) == {"green", "yellow", "red"}
    late = frame["days_past_due"].between(61, 90).to_numpy()
    assert all("61-90 days past due (-25)" in r for r in scores["reasons"][late])
    assert all(len(r.split("; ")) <= 3 for r in scores["reasons"])
    report = score_report(scores)
    assert sum(report["bands"].values()) == 2000
    assert report["top_reasons"][0]["customers"] > 0 and "(" not in report["top_reasons"][0]["reason"]


@pytest.mark.parametrize("body, key", [
    ("factors:\n  - {name: a, value: x, bands: [{below: 2, points: 0}, {below: 1, points: -1, reason: r}, "
     "{points: -2, reason: r}]}", "factors[0].bands"),
    ("factors:\n  - {name: a, value: x, bands: [{below: 1, points: -5}, {points: 0}]}", "factors[0].bands[0]"),
    ("factors:\n  - {name: a, value: x, colour: red, bands: [{points: 0}]}", "factors[0].colour"),
    ("start: lots\nfactors:\n  - {name: a, value: x, bands: [{points: 0}]}", "start"),
    ("factors: []", "factors"),
])
def test_scorecard_mistakes_are_one_line_naming_file_and_key(tmp_path, body, key):
    path = write(tmp_path, body)
    with pytest.raises(SegmentConfigError) as err:
        load_scorecard(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}") and "\n" not in message


def test_scorecard_expression_errors_name_the_factor(tmp_path):
    path = write(tmp_path, "factors:\n  - {name: a, value: 'x.__class__', bands: [{points: 0}]}")
    with pytest.raises(RuleError, match=r"factors\[0\]\.value.*attribute access"):
        load_scorecard(path)


def test_trained_model_beats_chance_and_reports_both_aucs():
    frame = synthetic_features(4000, seed=5, outcome=True)
    model, report = fit_model(frame, load_scorecard(DEFAULT_SCORECARD), test_share=0.3, seed=7)
    assert report.auc_model > 0.7
    assert 0.5 < report.auc_scorecard <= 1
    assert report.test_rows == 1200 and report.rows_used == 4000
    assert "outcome" not in report.features and "days_past_due" in report.features
    assert report.coefficients["days_past_due"] > 0  # later payers default more in the synthetic truth
    scores = model.score(frame)
    assert scores["score"].between(0, 100).all()
    assert scores["band"].tolist() == [band_for(s) for s in scores["score"]]
    worst = scores["score"].idxmin()
    assert re.fullmatch(r"[a-z ]+ \(-\d+\)(?:; [a-z ]+ \(-\d+\)){0,2}", scores.at[worst, "reasons"])
    assert "many days past due" in " ".join(scores["reasons"][scores["score"] < 40])
    # the points of a customer's reasons share out the gap below 100 among what pushed the risk up
    lost = [sum(int(x) for x in re.findall(r"\(-(\d+)\)", r)) for r in scores["reasons"]]
    assert np.all(np.asarray(lost) <= 100 - scores["score"].to_numpy() + 1.5)


def test_protected_attributes_never_become_model_features():
    frame = synthetic_features(1500, seed=2, outcome=True)
    frame["SEX"] = np.arange(len(frame)) % 2 + 1
    frame["age"] = 30
    frame["credit_limit"] = 5000.0
    _, report = fit_model(frame, load_scorecard(DEFAULT_SCORECARD), compare_boosting=False)
    assert "credit_limit" in report.features
    assert "SEX" not in report.features and "age" not in report.features


def test_training_without_outcome_or_with_one_class_is_a_model_error():
    frame = synthetic_features(200, seed=3)
    with pytest.raises(ModelError, match="the snapshot has no outcome column: map one with"):
        fit_model(frame, load_scorecard(DEFAULT_SCORECARD))
    frame["outcome"] = 0
    with pytest.raises(ModelError, match="each class"):
        fit_model(frame, load_scorecard(DEFAULT_SCORECARD))
