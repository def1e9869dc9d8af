"""Pure: predictions of a LightGBM text model (rag/models/*.txt) with NumPy alone.

The ranker and the answer scorers are trained with LightGBM (eval/train_*.py), but answering
only needs to walk their trees. Importing lightgbm at answer time imports scikit-learn, SciPy
and pandas with it: about a second of a new process's first answer on a quiet machine (six
under load), for a prediction that takes well under a millisecond. This walks the same trees
the way LightGBM's own predictor does (the input cast to double, `value <= threshold`, missing
values sent the side the tree recorded, trees summed in order), so the raw scores are LightGBM's
to the last bit and probabilities within 1e-12 (its exp); tests/test_tree_model.py compares
them. Models with categorical splits or linear leaves, which Citeline does not train, are
refused rather than approximated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.errors import CitelineError

_DEFAULT_LEFT = 2  # decision_type bit: a missing value goes left
_MISSING_ZERO = 1  # decision_type bits 2-3: zero counts as missing
_MISSING_NAN = 2  # ... NaN counts as missing
_ZERO = 1e-35  # LightGBM's kZeroThreshold: |value| at most this is zero


class TreeModelError(CitelineError, ValueError):
    """A model text this reader cannot evaluate exactly."""


@dataclass(frozen=True)
class TreeEnsemble:
    """All trees' nodes side by side: row t of each node array is tree t, padded.

    A child index >= 0 is an internal node of the same tree; a negative one, ~leaf."""

    feature: np.ndarray  # (trees, nodes) int
    threshold: np.ndarray  # (trees, nodes) float64
    default_left: np.ndarray  # (trees, nodes) bool
    missing: np.ndarray  # (trees, nodes) int: 0 none, 1 zero, 2 NaN
    left: np.ndarray  # (trees, nodes) int
    right: np.ndarray  # (trees, nodes) int
    leaf_value: np.ndarray  # (trees, leaves) float64
    features: int
    sigmoid: float | None  # binary objective: its sigmoid parameter; None: raw scores

    @classmethod
    def from_text(cls, text: str) -> TreeEnsemble:
        """Read a model saved by LightGBM (`Booster.save_model` / `model_to_string`)."""
        header, trees = _sections(text)
        if header.get("num_class", "1") != "1" or header.get("num_tree_per_iteration", "1") != "1":
            raise TreeModelError("only single-output LightGBM models can be read (num_class=1)")
        objective = header.get("objective", "")
        sigmoid: float | None = None
        if objective.startswith("binary"):
            sigmoid = float(dict(part.split(":", 1) for part in objective.split()[1:] if ":" in part).get("sigmoid", 1))
        elif objective.split()[0] not in ("lambdarank", "rank_xendcg", "regression", "regression_l2", "regression_l1"):
            raise TreeModelError(f"objective {objective!r} is not one this reader transforms")
        if not trees:
            raise TreeModelError("the model text holds no trees")
        width = max(max(int(t["num_leaves"]) - 1, 1) for t in trees)
        leaves = max(int(t["num_leaves"]) for t in trees)
        shape = (len(trees), width)
        feature = np.zeros(shape, dtype=np.int64)
        threshold = np.zeros(shape, dtype=np.float64)
        decision = np.zeros(shape, dtype=np.int64)
        left = np.full(shape, -1, dtype=np.int64)  # a one-leaf tree: node 0 sends everything to leaf 0
        right = np.full(shape, -1, dtype=np.int64)
        leaf_value = np.zeros((len(trees), leaves), dtype=np.float64)
        for row, tree in enumerate(trees):
            if int(tree.get("num_cat", "0")) > 0 or tree.get("is_linear", "0") != "0":
                raise TreeModelError("trees with categorical splits or linear leaves are not supported")
            values = _floats(tree["leaf_value"])
            leaf_value[row, : len(values)] = values
            if int(tree["num_leaves"]) < 2:
                continue
            nodes = int(tree["num_leaves"]) - 1
            feature[row, :nodes] = _ints(tree["split_feature"])
            threshold[row, :nodes] = _floats(tree["threshold"])
            decision[row, :nodes] = _ints(tree["decision_type"])
            left[row, :nodes] = _ints(tree["left_child"])
            right[row, :nodes] = _ints(tree["right_child"])
        if (decision & 1).any():
            raise TreeModelError("trees with categorical splits are not supported")
        return cls(
            feature=feature,
            threshold=threshold,
            default_left=(decision & _DEFAULT_LEFT) != 0,
            missing=(decision >> 2) & 3,
            left=left,
            right=right,
            leaf_value=leaf_value,
            features=int(header["max_feature_idx"]) + 1,
            sigmoid=sigmoid,
        )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The model's output for each row: a probability for a binary model, else the raw score."""
        data = np.asarray(rows)
        if data.ndim != 2 or data.shape[1] != self.features:
            raise TreeModelError(f"expected rows of {self.features} features, got an array of shape {data.shape}")
        values = data.astype(np.float64)
        nan = np.isnan(values)
        zero = nan | (np.abs(values) <= _ZERO)  # a NaN counts as 0 where NaN is not "missing"
        values = np.where(nan, 0.0, values)
        # Each node's input for every row, (rows, trees, nodes), then its decision as LightGBM's
        # NumericalDecision makes it.
        is_missing = ((self.missing == _MISSING_NAN) & nan[:, self.feature]) | (
            (self.missing == _MISSING_ZERO) & zero[:, self.feature]
        )
        go_left = np.where(is_missing, self.default_left, values[:, self.feature] <= self.threshold)
        child = np.where(go_left, self.left, self.right)  # every node's decision, for every row
        rows_at = np.arange(len(values))[:, None]
        trees = np.arange(self.feature.shape[0])[None, :]
        node = np.zeros((len(values), self.feature.shape[0]), dtype=np.int64)  # (rows, trees)
        active = node >= 0
        while active.any():
            node = np.where(active, child[rows_at, trees, np.maximum(node, 0)], node)
            active = node >= 0
        per_tree = self.leaf_value[trees, ~node]  # (rows, trees)
        # In tree order, as LightGBM adds them (np.sum would pair them and round differently).
        raw = np.cumsum(per_tree, axis=1)[:, -1]
        if self.sigmoid is None:
            return raw
        return 1.0 / (1.0 + np.exp(-self.sigmoid * raw))


def _sections(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The model's header fields and each tree's fields (the text stops at 'end of trees')."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.splitlines():
        if line.startswith("end of trees"):
            break
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    for number, tree in enumerate(trees):
        if "num_leaves" not in tree or "leaf_value" not in tree:
            raise TreeModelError(f"tree {number} of the model text has no num_leaves or leaf_value")
    return header, trees


def _floats(field: str) -> list[float]:
    return [float(v) for v in field.split()]  # LightGBM writes 17 significant digits: exact doubles


def _ints(field: str) -> list[int]:
    return [int(v) for v in field.split()]
