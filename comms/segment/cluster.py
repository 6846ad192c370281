"""Clustering of customers on configured features, with k chosen by silhouette, profiled in original units.

Why a sample: k-means converges on a few thousand points as well as on a million, and the silhouette is
O(n^2). So k-means is fitted on ``sample`` rows (standardized, missing values set to the median), the
silhouette of each candidate k is measured on ``silhouette_sample`` of those, the best k wins (ties go to
the smaller k), and every customer is then assigned to its nearest centre. Cluster ids are renumbered
by size, largest first, so that 0 is always the biggest group.

The candidate k are fitted two at a time (k-means and the silhouette run without the GIL, one OpenMP/BLAS
thread each), and scikit-learn (a second of imports) is loaded only when a file clusters: ``preload``
starts that import in a thread while the snapshot is read and scored.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..config import setting
from ..errors import SegmentConfigError
from .config import Clustering
from .values import Context, numeric


def compute_threads() -> threadpool_limits:
    """Limit OpenMP/BLAS threads (setting ``compute_threads``, default 1) around scikit-learn work.

    Why: on a busy 2-core machine, OpenMP's spinning threads made a 5,000-row gradient-boosting fit take
    37 s instead of 0.3 s, and k-means likewise. The fits here run on samples, so one thread is plenty.
    """
    return threadpool_limits(limits=setting("compute_threads", default=1, cast=int))


def _import_sklearn() -> None:
    try:
        import sklearn.cluster  # noqa: F401
        import sklearn.metrics  # noqa: F401
    except ImportError:
        pass  # the import in _fit_candidates then says what is missing


def preload() -> None:
    """Start importing scikit-learn in the background; the first fit waits for it if it is not done."""
    threading.Thread(target=_import_sklearn, name="import-sklearn", daemon=True).start()


@dataclass(frozen=True)
class ClusterResult:
    labels: np.ndarray            # int32 per customer
    k: int
    silhouette: float | None      # of the chosen k on the silhouette sample (None when k == 1)
    silhouettes: dict[int, float]  # every candidate k tried
    profiles: list[dict]          # per cluster: id, count, share, per feature mean and median (original units)
    features: list[str]

    def summary(self) -> dict:
        return {"k": self.k, "silhouette": self.silhouette,
                "silhouettes": {str(k): v for k, v in self.silhouettes.items()},
                "features": self.features, "profiles": self.profiles}


class _FeatureCheck:
    def __init__(self, name: str):
        self.name = name

    def _fail(self, problem: str):
        raise SegmentConfigError(f"clustering feature {self.name!r}: {problem}")


def feature_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise SegmentConfigError(f"clustering feature {missing[0]!r} is not a column of the snapshot "
                                 f"(available: {', '.join(sorted(map(str, frame.columns)))})")
    X = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        X[:, j] = numeric(frame[name], Context(frame, _FeatureCheck(name)), "clustering")  # type: ignore[arg-type]
    return X


def fit_clusters(frame: pd.DataFrame, config: Clustering) -> ClusterResult:
    """Cluster every row of ``frame`` as configured.

    Example: fit_clusters(frame, Clustering(features=["balance", "days_past_due"])).k
    """
    with compute_threads():
        return _fit(frame, config)


def _fit(frame: pd.DataFrame, config: Clustering) -> ClusterResult:
    X = feature_matrix(frame, config.features)
    n = len(X)
    if n == 0:
        return ClusterResult(np.zeros(0, dtype=np.int32), 0, None, {}, [], list(config.features))
    rng = np.random.default_rng(config.seed)
    rows = rng.choice(n, size=config.sample, replace=False) if n > config.sample else np.arange(n)
    sample = X[rows]
    with np.errstate(all="ignore"):
        centre = np.nanmedian(sample, axis=0) if len(sample) else np.zeros(X.shape[1])
    centre = np.where(np.isnan(centre), 0.0, centre)
    filled = np.where(np.isnan(sample), centre, sample)
    mean, std = filled.mean(axis=0), filled.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    Z = (filled - mean) / std
    distinct = len(np.unique(Z, axis=0))

    if isinstance(config.k, int):
        candidates = [min(config.k, max(distinct, 1))]
    else:
        lo, hi = config.k_range
        candidates = list(range(lo, min(hi, distinct - 1) + 1)) or [min(distinct, 2)]
    sil_rows = rng.choice(len(Z), size=config.silhouette_sample, replace=False) \
        if len(Z) > config.silhouette_sample else np.arange(len(Z))
    best, best_model, scores = None, None, {}
    for k, (model, sil) in zip(candidates, _fit_candidates(Z, candidates, sil_rows, config.seed)):
        if sil is not None:
            scores[k] = round(sil, 4)
        if best_model is None or (sil is not None and (best is None or sil > best + 1e-9)):
            best, best_model = sil, model

    labels = np.zeros(n, dtype=np.int32)
    chunk = 250_000  # bounds the (rows x features) temporaries on a million customers
    for start in range(0, n, chunk):
        part = X[start:start + chunk]
        part = (np.where(np.isnan(part), centre, part) - mean) / std
        labels[start:start + chunk] = best_model.predict(part)
    k = int(best_model.n_clusters)
    counts = np.bincount(labels, minlength=k)
    order = np.argsort(-counts, kind="stable")
    relabel = np.empty(k, dtype=np.int32)
    relabel[order] = np.arange(k, dtype=np.int32)
    labels = relabel[labels]
    return ClusterResult(labels=labels, k=k, silhouette=None if best is None else round(best, 4),
                         silhouettes=scores, profiles=profile(X, labels, k, config.features),
                         features=list(config.features))


def _fit_candidates(Z: np.ndarray, candidates: list[int], sil_rows: np.ndarray, seed: int) -> list[tuple]:
    """(k-means model, silhouette or None) per candidate k, in order; two candidates at a time. Each
    worker limits its own OpenMP threads (the limit is per thread), so results equal a serial run's. The
    silhouette sample's distances are the same for every k: computed once, not once per candidate."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score

    with compute_threads():
        distances = pairwise_distances(Z[sil_rows]) if len(sil_rows) > 2 else None

    def fit(k: int) -> tuple:
        with compute_threads():
            model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(Z)
            labels = model.labels_[sil_rows]
            if 2 <= k < len(sil_rows) and len(np.unique(labels)) > 1:
                return model, float(silhouette_score(distances, labels, metric="precomputed"))
            return model, None

    if len(candidates) < 2:
        return [fit(k) for k in candidates]
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(fit, candidates))


def profile(X: np.ndarray, labels: np.ndarray, k: int, features: list[str]) -> list[dict]:
    """Per cluster: count, share, and each feature's mean and median in the data's own units."""
    frame = pd.DataFrame(X, columns=features)
    frame["_cluster"] = labels
    grouped = frame.groupby("_cluster", sort=True)
    means, medians, counts = grouped.mean(), grouped.median(), grouped.size()
    total = max(len(X), 1)
    out = []
    for c in range(k):
        count = int(counts.get(c, 0))
        feats = {f: {"mean": _num(means.at[c, f]) if count else None,
                     "median": _num(medians.at[c, f]) if count else None} for f in features}
        out.append({"cluster": c, "count": count, "share": round(count / total, 4), "features": feats})
    return out


def _num(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 4)
