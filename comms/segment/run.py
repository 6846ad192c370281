"""Snapshot-level entry points: score, train, segment the newest snapshot and record the result.

These are what the CLI, the campaign layer and the benchmarks call. The scorer is the active trained
model when there is one (its file checked against the SHA-256 recorded when it was registered), else the
transparent scorecard from settings.scorecard_file.

Segmenting reads only the columns the rules, the scorer and the clustering use (a third of a snapshot's
bytes), and scikit-learn and joblib are imported only where a model or the clustering needs them.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import Settings
from ..errors import ModelError, StoreError
from ..store.db import Store
from ..store.snapshots import (ScoreModel, SegmentRun, Snapshot, active_model, get_model, get_snapshot,
                               register_model, save_segment_run, set_active_model)
from .assignment import assign
from .cluster import fit_clusters, preload as preload_clustering
from .config import DERIVED_COLUMNS, SegmentsConfig, load_segments
from .score import score_customers, score_report
from .scorecard import Scorecard, load_scorecard

if TYPE_CHECKING:
    from .model import TrainedModel

# What the segment summary reads besides the rules, the scorer and the clustering features.
SUMMARY_COLUMNS = frozenset({"customer_id", "balance", "currency"})


def load_features(snapshot: Snapshot, columns: list[str] | None = None) -> pd.DataFrame:
    """The snapshot's customers with money as Arrow decimals (converted in C when rules read them)."""
    if not snapshot.customers_path.exists():
        raise StoreError(f"the data of snapshot {snapshot.id} is missing from {snapshot.data_path}")
    table = pq.read_table(snapshot.customers_path, columns=columns)
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_decimal(t) else None)


def load_model(record: ScoreModel) -> TrainedModel:
    """Load a registered model file after checking it is the file that was registered."""
    path = Path(record.path)
    if not path.is_file():
        raise ModelError(f"score model {record.id}: file {path} is missing; run `comms score --use-scorecard` "
                         "or train again")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != record.sha256:
        raise ModelError(f"score model {record.id}: {path} changed since it was trained (checksum differs)")
    import joblib

    from .model import TrainedModel
    model = joblib.load(path)
    if not isinstance(model, TrainedModel):
        raise ModelError(f"score model {record.id}: {path} is not a comms score model")
    return model


def current_scorer(store: Store, settings: Settings) -> tuple[Scorecard | TrainedModel, ScoreModel | None]:
    """The active trained model and its record, else the scorecard and None."""
    record = active_model(store)
    if record is not None:
        return load_model(record), record
    return load_scorecard(settings.scorecard_file), None


def _score(frame: pd.DataFrame, scorer: Scorecard | TrainedModel, record: ScoreModel | None) -> pd.DataFrame:
    if record is not None:
        missing = [f for f in record.features if f not in frame.columns]
        if missing:
            raise ModelError(f"the active score model {record.id} needs column {missing[0]!r}, which this snapshot "
                             "lacks: train again or go back with `comms score --use-scorecard`")
    return score_customers(frame, scorer)


def score_snapshot(store: Store, settings: Settings) -> tuple[pd.DataFrame, dict]:
    """Score the newest snapshot: (DataFrame(customer_id, score, band, reasons), report)."""
    snapshot = get_snapshot(store)
    frame = load_features(snapshot)
    scorer, record = current_scorer(store, settings)
    scores = _score(frame, scorer, record)
    report = score_report(scores)
    report.update(snapshot_id=snapshot.id, scorer=_scorer_name(record))
    scores.insert(0, "customer_id", frame["customer_id"].to_numpy())
    return scores, report


def segment_snapshot(store: Store, settings: Settings,
                     segments_path: Path | str | None = None) -> tuple[SegmentRun, dict]:
    """Score, cluster and segment the newest snapshot; store the run (assignments + summary).

    Example: run, summary = segment_snapshot(store, settings); summary["segments"][0]["count"]
    """
    snapshot = get_snapshot(store)
    config = load_segments(segments_path or settings.segments_file, settings.templates_dir)
    if config.clustering:
        preload_clustering()
    present = snapshot_columns(snapshot)
    config.check_columns(frozenset(present) | DERIVED_COLUMNS)
    scorer, record = current_scorer(store, settings)
    frame = load_features(snapshot, columns_read(present, config, scorer))
    if config.clustering:
        # clustering (k-means and silhouettes, mostly without the GIL) beside the scoring (numpy)
        with ThreadPoolExecutor(1, thread_name_prefix="clustering") as pool:
            clusters = pool.submit(fit_clusters, frame, config.clustering)
            scores = _score(frame, scorer, record)
            clusters = clusters.result()
    else:
        clusters, scores = None, _score(frame, scorer, record)
    assignments, summary = assign(frame, config, scores, clusters)
    summary.update(snapshot_id=snapshot.id, scorer=_scorer_name(record))
    run = save_segment_run(store, snapshot.id, assignments, segments_sha256=config.sha256,
                           score_model_id=record.id if record else None, summary=summary)
    return run, summary


def snapshot_columns(snapshot: Snapshot) -> list[str]:
    """The columns of the snapshot's customers, from the Parquet footer."""
    if not snapshot.customers_path.exists():
        raise StoreError(f"the data of snapshot {snapshot.id} is missing from {snapshot.data_path}")
    return pq.read_schema(snapshot.customers_path).names


def columns_read(present: list[str], config: SegmentsConfig,
                 scorer: Scorecard | TrainedModel) -> list[str] | None:
    """The columns segmenting reads, in the file's order; None (all of them) when one it needs is missing,
    so that the error it leads to lists every column the snapshot has."""
    wanted = set(config.rule_columns()) | set(scorer.names if isinstance(scorer, Scorecard) else scorer.features)
    if config.clustering:
        wanted |= set(config.clustering.features)
    if wanted - DERIVED_COLUMNS - set(present):
        return None
    wanted |= SUMMARY_COLUMNS
    return [c for c in present if c in wanted]


def train_model(store: Store, settings: Settings, test_share: float = 0.3, seed: int = 7,
                activate: bool = False) -> tuple[ScoreModel, dict]:
    """Fit a model on the newest snapshot's outcome column, save and register it (optionally active).

    Example: record, report = train_model(store, settings, activate=True); report["auc_model"]
    """
    from .model import fit_model
    snapshot = get_snapshot(store)
    frame = load_features(snapshot)
    scorecard = load_scorecard(settings.scorecard_file)
    model, report = fit_model(frame, scorecard, test_share=test_share, seed=seed)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    model.meta.update(snapshot_id=snapshot.id, trained_at=stamp, report=report.as_dict())
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    path = settings.models_dir / f"score-model-s{snapshot.id}-{stamp}.joblib"
    import joblib  # only training and loading a model need it
    joblib.dump(model, path)
    record = register_model(store, snapshot_id=snapshot.id, kind=model.kind, path=path, features=model.features,
                            auc_model=report.auc_model, auc_scorecard=report.auc_scorecard,
                            test_rows=report.test_rows, activate=activate)
    return record, {**report.as_dict(), "model_id": record.id, "active": record.active, "path": str(path)}


def use_model(store: Store, model_id: int | None = None) -> ScoreModel:
    """Make a trained model (the newest when no id) the one scoring uses; loads it to be sure it works."""
    if model_id is None:
        model_id = newest_model_id(store)
    record = get_model(store, model_id)
    load_model(record)
    set_active_model(store, record.id)
    return get_model(store, record.id)


def use_scorecard(store: Store) -> None:
    set_active_model(store, None)


def newest_model_id(store: Store) -> int:
    from sqlalchemy import func, select

    from ..store import schema as t
    with store.begin() as conn:
        model_id = conn.execute(select(func.max(t.score_models.c.id))).scalar()
    if model_id is None:
        raise ModelError("no score model has been trained yet: run `comms score --train` first")
    return int(model_id)


def _scorer_name(record: ScoreModel | None) -> str:
    return f"model {record.id} ({record.kind})" if record else "scorecard"


def example_customers(store: Store, run: SegmentRun, summary: dict) -> dict[str, list[dict]]:
    """Per segment, its example customers with id, name, balance, days past due, score and reasons."""
    ids = [cid for seg in summary["segments"] for cid in seg["examples"]]
    if not ids:
        return {}
    path = get_snapshot(store, run.snapshot_id).customers_path
    present = set(pq.read_schema(path).names)
    wanted = [c for c in ("customer_id", "name", "balance", "currency", "days_past_due") if c in present]
    people = pq.read_table(path, columns=wanted, filters=[("customer_id", "in", ids)]).to_pylist()
    scored = pq.read_table(run.data_path, columns=["customer_id", "score", "reasons"],
                           filters=[("customer_id", "in", ids)]).to_pylist()
    by_id = {p["customer_id"]: p for p in people}
    for row in scored:
        by_id.setdefault(row["customer_id"], {}).update(row)
    return {seg["name"]: [by_id.get(cid, {"customer_id": cid}) for cid in seg["examples"]]
            for seg in summary["segments"]}
