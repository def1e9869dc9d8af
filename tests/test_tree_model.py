"""The NumPy reader of LightGBM models gives LightGBM's own predictions, for the shipped models
and for models trained here with every kind of missing-value handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from rag.tree_model import TreeEnsemble, TreeModelError

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "rag" / "models"


def _awkward_rows(features: int, count: int = 400, seed: int = 0) -> np.ndarray:
    """float32 rows with NaNs, exact zeros, tiny values and repeated round values (which land on
    split thresholds)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(0.0, 3.0, (count, features)).astype(np.float32)
    rows = np.where(rng.random(rows.shape) < 0.3, np.round(rows), rows)
    rows[rng.random(rows.shape) < 0.15] = 0.0
    rows[rng.random(rows.shape) < 0.05] = 1e-38
    rows[rng.random(rows.shape) < 0.2] = np.nan
    return rows


@pytest.mark.parametrize("name", ["fusion_ranker", "answer_scorer", "span_scorer"])
def test_the_shipped_models_predict_as_lightgbm_does(name: str) -> None:
    text = (MODELS / f"{name}.txt").read_text()
    trees = TreeEnsemble.from_text(text)
    booster = lightgbm.Booster(model_str=text)
    rows = _awkward_rows(trees.features)
    ours = trees.predict(rows)
    if trees.sigmoid is None:
        assert np.array_equal(ours, booster.predict(rows, num_threads=1))
    else:
        np.testing.assert_allclose(ours, booster.predict(rows, num_threads=1), rtol=0, atol=1e-12)
        raw = TreeEnsemble.from_text(text.replace("objective=binary sigmoid:1", "objective=regression"))
        assert np.array_equal(raw.predict(rows), booster.predict(rows, raw_score=True, num_threads=1))


@pytest.mark.parametrize(
    ("params", "objective"),
    [
        ({"use_missing": True}, "regression"),  # NaN as missing, either default side
        ({"zero_as_missing": True}, "regression"),  # zero and NaN as missing
        ({"use_missing": False}, "regression"),  # no missing type: NaN compared as 0
        ({}, "binary"),
    ],
)
def test_models_trained_with_each_missing_value_rule_predict_as_lightgbm_does(
    params: dict[str, bool], objective: str
) -> None:
    rng = np.random.default_rng(1)
    rows = _awkward_rows(6, count=3000, seed=2)
    signal = np.nan_to_num(rows[:, 0]) - 2 * np.isnan(rows[:, 1]) + (rows[:, 2] == 0) + rng.normal(0, 0.1, len(rows))
    labels = signal > 0 if objective == "binary" else signal
    booster = lightgbm.train(
        {"objective": objective, "num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1, "seed": 3, **params},
        lightgbm.Dataset(rows, labels.astype(np.float64)),
        num_boost_round=40,
    )
    trees = TreeEnsemble.from_text(booster.model_to_string())
    fresh = _awkward_rows(6, count=500, seed=4)
    np.testing.assert_allclose(trees.predict(fresh), booster.predict(fresh, num_threads=1), rtol=0, atol=1e-12)
    assert np.array_equal(
        TreeEnsemble.from_text(booster.model_to_string().replace("objective=binary sigmoid:1", "objective=regression"))
        .predict(fresh),
        booster.predict(fresh, raw_score=True, num_threads=1),
    )


def test_no_rows_give_no_predictions_and_wrong_widths_are_refused() -> None:
    trees = TreeEnsemble.from_text((MODELS / "fusion_ranker.txt").read_text())
    assert trees.predict(np.zeros((0, trees.features), dtype=np.float32)).shape == (0,)
    with pytest.raises(TreeModelError, match=f"expected rows of {trees.features} features"):
        trees.predict(np.zeros((3, trees.features + 1), dtype=np.float32))


def test_categorical_splits_are_refused_rather_than_approximated() -> None:
    rows = np.column_stack([np.arange(300) % 5, np.arange(300) % 7]).astype(np.float64)
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5, "min_data_per_group": 5},
        lightgbm.Dataset(rows, (rows[:, 0] == 2).astype(float), categorical_feature=[0]),
        num_boost_round=3,
    )
    assert "num_cat=1" in booster.model_to_string()
    with pytest.raises(TreeModelError, match="categorical"):
        TreeEnsemble.from_text(booster.model_to_string())


def test_answering_loads_the_models_without_importing_lightgbm() -> None:
    code = (
        "import sys; from rag import answer_model, fusion_model; from rag.config import DEFAULT_EMBEDDING_MODEL; "
        "fusion_model.load(DEFAULT_EMBEDDING_MODEL); answer_model.load(DEFAULT_EMBEDDING_MODEL); "
        "print(sorted(m for m in ('lightgbm', 'sklearn', 'scipy', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
