"""A trained, still explainable risk score: logistic regression on standardized features.

``fit_model`` learns p(default) from a portfolio's outcome column on part of the rows and measures the
AUC on the rest, next to the transparent scorecard's AUC on the same rows (and, for reference, a gradient
boosting model's). A :class:`TrainedModel` scores as ``100 * (1 - p)`` and explains each score by the
features that pushed p up the most: those away from the portfolio average in the risky direction,
each taking a share of the points below 100 in proportion to its standardized contribution to the logit.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import ModelError
from .cluster import compute_threads
from .scorecard import ModelSettings, ReasonCodes, Scorecard, bands_for, top_reasons
from .values import Context, numeric

KIND = "logistic_regression"
MAX_TRAIN_ROWS = 300_000  # beyond this a logistic regression learns nothing new; keeps --train quick

# How a collector reads "this feature pushed the risk up": (when below average, when above average).
LABELS = {
    "days_past_due": ("few days past due", "many days past due"),
    "payment_ratio": ("small share of bills paid", "large share of bills paid"),
    "broken_promises": ("few broken promises to pay", "many broken promises to pay"),
    "dispute": ("no dispute", "open dispute"),
    "tenure_months": ("short time as a customer", "long time as a customer"),
    "invoice_count": ("few unpaid invoices", "many unpaid invoices"),
    "balance": ("low open balance", "high open balance"),
    "max_invoice_amount": ("small largest invoice", "large largest invoice"),
    "billed_history": ("little billed so far", "much billed so far"),
    "paid_history": ("little paid so far", "much paid so far"),
    "limit_bal": ("low credit limit", "high credit limit"),
    "credit_limit": ("low credit limit", "high credit limit"),
}
NOT_FEATURES = {"outcome", "score", "cluster", "customer_id"}


def feature_columns(frame: pd.DataFrame, settings: ModelSettings) -> list[str]:
    """Numeric, boolean and money columns the model may read, in the frame's order."""
    if isinstance(settings.features, list):
        missing = [c for c in settings.features if c not in frame.columns]
        if missing:
            raise ModelError(f"model feature {missing[0]!r} is not a column of the snapshot")
        return list(settings.features)
    chosen = []
    excluded = {e.lower() for e in settings.exclude} | NOT_FEATURES
    for name in frame.columns:
        if str(name).lower() in excluded:
            continue
        col = frame[name]
        dtype = col.dtype
        is_decimal = isinstance(dtype, pd.ArrowDtype) and "decimal" in str(dtype.pyarrow_dtype)
        if is_decimal or pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            chosen.append(name)
        elif dtype == object and col.first_valid_index() is not None \
                and isinstance(col.at[col.first_valid_index()], decimal.Decimal):
            chosen.append(name)
    if not chosen:
        raise ModelError("the snapshot has no numeric columns a model could learn from")
    return chosen


def design_matrix(frame: pd.DataFrame, features: list[str], log_scale: list[str]) -> np.ndarray:
    """float64 matrix of the features; money converted, log_scale columns as log1p(max(x, 0))."""
    ctx = Context(frame, _ColumnCheck())  # type: ignore[arg-type]
    out = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        values = np.asarray(numeric(frame[name], ctx, name), dtype=np.float64)
        out[:, j] = np.log1p(np.maximum(values, 0)) if name in log_scale else values
    return out


class _ColumnCheck:
    """Stands in for an Expression when a model reads columns: text where numbers belong is a ModelError."""

    def _fail(self, problem: str):
        raise ModelError(f"model feature: {problem}")


@dataclass
class TrainedModel:
    """What is saved with joblib: the fitted pipeline and how to build its input."""

    pipeline: Pipeline
    features: list[str]
    log_scale: list[str]
    kind: str = KIND
    meta: dict[str, Any] = field(default_factory=dict)

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        with compute_threads():
            return self.pipeline.predict_proba(design_matrix(frame, self.features, self.log_scale))[:, 1]

    def _score_part(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        X = design_matrix(frame, self.features, self.log_scale)
        imputer, scaler, lr = (self.pipeline.named_steps[s] for s in ("impute", "scale", "model"))
        with compute_threads():
            z = scaler.transform(imputer.transform(X))
        contrib = z * lr.coef_[0]
        p = 1 / (1 + np.exp(-(contrib.sum(axis=1) + lr.intercept_[0])))
        scores = np.round(100 * (1 - p), 1)
        # The points below 100 are shared among the features that push p(default) up, in proportion to
        # their standardized contributions: like the scorecard, a customer's reasons add up to the gap.
        push = np.maximum(contrib, 0)
        total = push.sum(axis=1, keepdims=True)
        share = np.divide(push, total, out=np.zeros_like(push), where=total > 0)
        lost = np.clip(np.round((100 - scores)[:, None] * share), 0, 100).astype(np.int32)
        codes = 1 + (np.arange(len(self.features), dtype=np.int32) * 2 + (z > 0)) * 101 + lost
        return scores, codes.T

    def _reason_codes(self) -> ReasonCodes:
        """Code 1 + (feature * 2 + above-average) * 101 + points: '<phrase> (-points)'."""
        texts, cost, factor = [""], [0], [-1]
        for j, name in enumerate(self.features):
            plain = str(name).replace("_", " ")
            for phrase in LABELS.get(name, (f"low {plain}", f"high {plain}")):
                for pts in range(101):
                    texts.append(f"{phrase} (-{pts})")
                    cost.append(pts * 100)
                    factor.append(j)
        return ReasonCodes(texts, np.asarray(cost), np.asarray(factor))

    def score(self, frame: pd.DataFrame, chunk: int = 200_000) -> pd.DataFrame:
        """DataFrame(score, band, reasons): score = 100 * (1 - p(default)), reasons = biggest push to p.

        Works in chunks of rows so that the (rows x features) temporaries stay small on a million customers.
        """
        n, k = len(frame), len(self.features)
        scores = np.empty(n, dtype=np.float64)
        codes = np.empty((k, n), dtype=np.int32)
        for start in range(0, n, chunk):
            part = frame.iloc[start:start + chunk]
            scores[start:start + chunk], codes[:, start:start + chunk] = self._score_part(part)
        reasons = top_reasons(codes, self._reason_codes())
        return pd.DataFrame({"score": scores, "band": bands_for(scores), "reasons": reasons}, index=frame.index)


@dataclass(frozen=True)
class TrainingReport:
    rows_used: int
    train_rows: int
    test_rows: int
    positives: int
    auc_model: float
    auc_scorecard: float
    auc_boosting: float | None
    features: list[str]
    coefficients: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def fit_model(frame: pd.DataFrame, scorecard: Scorecard, test_share: float = 0.3, seed: int = 7,
              compare_boosting: bool = True) -> tuple[TrainedModel, TrainingReport]:
    """Fit on (1 - test_share) of the labelled rows, report AUCs on the rest.

    Example: model, report = fit_model(frame, load_scorecard("segments/scorecard.yaml"))
    """
    with compute_threads():
        return _fit(frame, scorecard, test_share, seed, compare_boosting)


def _fit(frame: pd.DataFrame, scorecard: Scorecard, test_share: float, seed: int,
         compare_boosting: bool) -> tuple[TrainedModel, TrainingReport]:
    if "outcome" not in frame.columns:
        raise ModelError("the snapshot has no outcome column: map one with `outcome: <column>` in the "
                         "import mapping and ingest again")
    if not 0 < test_share < 1:
        raise ModelError(f"test share must be between 0 and 1, got {test_share}")
    y_all = pd.to_numeric(frame["outcome"], errors="coerce")
    labelled = y_all.notna().to_numpy()
    data, y = frame.loc[labelled], y_all[labelled].astype(int).to_numpy()
    if len(np.unique(y)) < 2 or min(np.bincount(y)) < 5:
        raise ModelError("the outcome column needs at least 5 customers of each class (0 and 1) to train")
    settings = scorecard.spec.model
    features = feature_columns(data, settings)
    X = design_matrix(data, features, settings.log_scale)
    rows = np.arange(len(data))
    train, test = train_test_split(rows, test_size=test_share, random_state=seed, stratify=y)
    fit_rows = train if len(train) <= MAX_TRAIN_ROWS else \
        np.random.default_rng(seed).choice(train, MAX_TRAIN_ROWS, replace=False)
    pipeline = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                         ("scale", StandardScaler()),
                         ("model", LogisticRegression(max_iter=2000))])
    pipeline.fit(X[fit_rows], y[fit_rows])
    auc_model = float(roc_auc_score(y[test], pipeline.predict_proba(X[test])[:, 1]))
    card = scorecard.score(data.iloc[test])
    auc_card = float(roc_auc_score(y[test], -card["score"].to_numpy()))
    auc_boost = None
    if compare_boosting:
        hgb = HistGradientBoostingClassifier(random_state=seed, max_iter=200)
        hgb.fit(X[fit_rows], y[fit_rows])
        auc_boost = float(roc_auc_score(y[test], hgb.predict_proba(X[test])[:, 1]))
    coefs = dict(zip(features, np.round(pipeline.named_steps["model"].coef_[0], 4).tolist()))
    model = TrainedModel(pipeline, features, [c for c in settings.log_scale if c in features])
    report = TrainingReport(rows_used=len(data), train_rows=len(fit_rows), test_rows=len(test),
                            positives=int(y.sum()), auc_model=round(auc_model, 4),
                            auc_scorecard=round(auc_card, 4),
                            auc_boosting=None if auc_boost is None else round(auc_boost, 4),
                            features=features, coefficients=coefs)
    return model, report
