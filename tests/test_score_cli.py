"""`comms score` through the real command: bands, training with both AUCs, switching the scorer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from comms.segment.synthetic import save_synthetic_snapshot, synthetic_table
from comms.store import Store
from comms.store.snapshots import active_model, get_segment_run


@pytest.fixture
def opened(settings):
    store = Store.open(settings)
    yield store
    store.dispose()


def test_score_prints_band_counts_and_top_reasons(cli, opened):
    save_synthetic_snapshot(opened, synthetic_table(800, seed=2))
    proc = cli("score", env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    counts = {band: int(n.replace(",", "")) for band, n in
              re.findall(r"(green|yellow|red) \([^)]*\)\s*│\s*([\d,]+)", proc.stdout)}
    assert set(counts) == {"green", "yellow", "red"} and sum(counts.values()) == 800
    assert "Reasons that cost the most customers points" in proc.stdout
    assert "days past due" in proc.stdout and "(scorecard)" in proc.stdout


def test_train_reports_both_aucs_then_use_switches_scoring_and_segment_runs(cli, opened):
    snapshot = save_synthetic_snapshot(opened, synthetic_table(3000, seed=8, outcome=True))
    proc = cli("score", "--train", "--use", env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    auc_model = float(re.search(r"trained model \(logistic regression\)\s*│\s*([\d.]+)", proc.stdout).group(1))
    auc_card = float(re.search(r"transparent scorecard\s*│\s*([\d.]+)", proc.stdout).group(1))
    assert auc_model > 0.7 and 0.5 < auc_card <= 1
    assert "rows used: 3,000 labelled customers" in proc.stdout and "tested on 900" in proc.stdout
    model = active_model(opened)
    assert model is not None and model.snapshot_id == snapshot.id and model.path.is_file()
    assert f"Scores of snapshot {snapshot.id} (model {model.id}" in proc.stdout

    assert cli("segment").returncode == 0
    run = get_segment_run(opened)
    assert run.score_model_id == model.id and run.summary["scorer"].startswith(f"model {model.id}")

    back = cli("score", "--use-scorecard")
    assert back.returncode == 0 and "scoring now uses the transparent scorecard" in back.stdout
    assert active_model(opened) is None
    assert cli("segment").returncode == 0
    assert get_segment_run(opened).score_model_id is None


def test_train_without_outcome_column_is_one_line_and_exit_2(cli, opened):
    save_synthetic_snapshot(opened, synthetic_table(300, seed=3))
    proc = cli("score", "--train")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: the snapshot has no outcome column: map one with")


def test_tampered_model_file_is_refused(cli, opened):
    save_synthetic_snapshot(opened, synthetic_table(1000, seed=4, outcome=True))
    assert cli("score", "--train", "--use").returncode == 0
    model = active_model(opened)
    model.path.write_bytes(model.path.read_bytes() + b"x")
    proc = cli("segment")
    assert proc.returncode == 2 and "changed since it was trained" in proc.stderr


def test_uci_credit_card_model_and_scorecard_aucs(cli):
    """The real UCI default set: the trained model must beat the hand-made scorecard on held-out rows."""
    root = Path(__file__).resolve().parent.parent
    data = root.parent / "shared" / "datasets" / "uci_default_credit_card_numeric.csv"
    ingest = cli("ingest", str(data), "--mapping", str(root / "mappings" / "uci_credit_card.yaml"))
    assert ingest.returncode == 0, ingest.stderr
    proc = cli("score", "--train", env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    auc_model = float(re.search(r"trained model \(logistic regression\)\s*│\s*([\d.]+)", proc.stdout).group(1))
    auc_card = float(re.search(r"transparent scorecard\s*│\s*([\d.]+)", proc.stdout).group(1))
    assert "rows used: 30,000 labelled customers (6,636 defaulted)" in proc.stdout
    assert auc_model > 0.72 and auc_card > 0.6 and auc_model > auc_card
