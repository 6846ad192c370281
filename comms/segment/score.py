"""Scoring entry points: one function for either scorer, and the portfolio-level account of the scores.

A scorer is the transparent :class:`~comms.segment.scorecard.Scorecard` or a trained
:class:`~comms.segment.model.TrainedModel`; both return DataFrame(score, band, reasons) with the score
0..100 (one decimal), the band (green >= 80, yellow 60-79.9, red < 60) and the top three reasons.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .scorecard import Scorecard

if TYPE_CHECKING:  # the trained model's module imports scikit-learn: only loaded when a model is used
    from .model import TrainedModel


def score_customers(frame: pd.DataFrame, scorer: Scorecard | TrainedModel) -> pd.DataFrame:
    """DataFrame(score, band, reasons) on ``frame``'s index.

    Example: score_customers(frame, load_scorecard("segments/scorecard.yaml")).band.value_counts()
    """
    return scorer.score(frame)


def score_report(scores: pd.DataFrame, top: int = 8) -> dict:
    """Band counts, score quartiles and the reasons that cost the most customers points, overall."""
    band_counts = scores["band"].value_counts()
    reasons = scores["reasons"]
    counter: Counter[str] = Counter()
    grouped = reasons.value_counts(sort=False) if len(reasons) else pd.Series(dtype=np.int64)
    for joined, count in grouped.items():
        if count and isinstance(joined, str) and joined:
            for part in joined.split("; "):
                counter[_without_points(part)] += int(count)
    values = scores["score"].to_numpy(dtype=np.float64)
    quartiles = [round(float(q), 1) for q in np.percentile(values, [25, 50, 75])] if len(values) else []
    return {
        "customers": int(len(scores)),
        "bands": {b: int(band_counts.get(b, 0)) for b in ("green", "yellow", "red")},
        "score": {"mean": round(float(values.mean()), 1) if len(values) else None,
                  "quartiles": quartiles},
        "top_reasons": [{"reason": r, "customers": c} for r, c in counter.most_common(top)],
    }


def _without_points(reason: str) -> str:
    """'61-90 days past due (-25)' -> '61-90 days past due': model reasons vary in points per customer."""
    head, sep, tail = reason.rpartition(" (")
    return head if sep and tail.endswith(")") else reason
