"""A faster predict for forests, using scikit-learn's own compiled trees.

`RandomForestClassifier.predict` spends ~3 ms of pure-Python overhead per call (a
joblib dispatch, a config context and warning filters per tree) around ~5 us of
Cython per tree, holding the GIL throughout. This evaluates the same trees with the
same arithmetic (sum of `tree_.predict` in estimator order, argmax over the classes;
the mean for regressors) in ~0.3 ms. It is used only after it matched the
estimator's own predict on a probe sample at load time, and any batch it cannot take
(non-finite values) goes to the estimator's predict.

A small batch (the usual 1-row request, or a few joined by the micro-batcher) pays
~4 us of call overhead per tree; `_FlatForest` walks all trees at once instead, one
numpy step per tree level over (trees x rows) node indices, ~3x quicker up to a few
dozen rows and slower beyond, so it takes batches of up to SMALL_BATCH rows (for
trees shallow enough that it is quicker: timed once at load). It sums the
same leaf values in the same order, and is checked on the probe like the rest."""

from collections.abc import Callable
import time
from typing import Any

import numpy as np

PROBE_ROWS = 256
SMALL_BATCH = 16
# Deeper trees make the level-by-level walk slower than the per-tree calls.
MAX_FLAT_DEPTH = 40


def accelerate(estimator: Any, predict_fn: str) -> Callable[[Any], Any] | None:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    if predict_fn != "predict" or getattr(estimator, "n_outputs_", None) != 1:
        return None
    kind = type(estimator)
    if kind in (RandomForestClassifier, ExtraTreesClassifier):
        fast = _classifier(estimator)
    elif kind in (RandomForestRegressor, ExtraTreesRegressor):
        fast = _regressor(estimator)
    else:
        return None
    probe = _probe(estimator)
    expected = estimator.predict(probe)
    if not np.array_equal(fast(probe), expected):
        return None
    small = [fast(probe[i : i + SMALL_BATCH]) for i in range(0, PROBE_ROWS, SMALL_BATCH)]
    if not np.array_equal(np.concatenate(small), expected):
        return None
    return fast


def _as_float32(X: Any, n_features: int) -> np.ndarray | None:
    array = np.asarray(X)
    if array.ndim != 2 or array.shape[1] != n_features or array.dtype.kind not in "fiu":
        return None
    array = np.ascontiguousarray(array, dtype=np.float32)
    return array if np.isfinite(array).all() else None


class _FlatForest:
    """Every tree's nodes in one set of arrays (leaves point to themselves), walked
    level by level for all trees and rows at once."""

    def __init__(self, trees: list, n_classes: int) -> None:
        offsets = np.cumsum([0] + [t.node_count for t in trees[:-1]])
        self.roots = offsets.astype(np.intp)
        own = [np.arange(t.node_count) for t in trees]
        self.left = np.concatenate(
            [
                np.where(t.children_left == -1, i, t.children_left) + o
                for t, i, o in zip(trees, own, offsets, strict=True)
            ]
        ).astype(np.intp)
        self.right = np.concatenate(
            [
                np.where(t.children_right == -1, i, t.children_right) + o
                for t, i, o in zip(trees, own, offsets, strict=True)
            ]
        ).astype(np.intp)
        self.feature = np.concatenate([np.maximum(t.feature, 0) for t in trees]).astype(np.intp)
        self.threshold = np.concatenate([t.threshold for t in trees])
        self.value = np.concatenate([t.value[:, 0, :n_classes] for t in trees])
        self.depth = max(t.max_depth for t in trees)

    def leaf_values(self, array: np.ndarray) -> np.ndarray:
        """(trees, rows, outputs) leaf values, for a float32 batch."""
        node = np.repeat(self.roots[:, None], len(array), axis=1)
        rows = np.broadcast_to(np.arange(len(array)), node.shape)
        for _ in range(self.depth):
            go_left = array[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return self.value[node]


def _flat(trees: list, n_classes: int, n_features: int) -> _FlatForest | None:
    """The flat walk, if it is the quicker way for a small batch of these trees: its
    cost grows with depth, the per-tree calls' hardly, so deep trees keep the calls."""
    if max(t.max_depth for t in trees) > MAX_FLAT_DEPTH:
        return None
    flat = _FlatForest(trees, n_classes)
    batch = np.zeros((SMALL_BATCH, n_features), dtype=np.float32)

    def per_tree() -> None:
        for tree in trees:
            tree.predict(batch)

    return flat if _seconds(lambda: flat.leaf_values(batch)) < _seconds(per_tree) else None


def _seconds(call: Callable[[], Any], repeat: int = 5) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return sorted(timings)[repeat // 2]


def _sum_in_order(values: np.ndarray) -> np.ndarray:
    total = values[0].copy()
    for value in values[1:]:
        total += value
    return total


def _classifier(estimator: Any) -> Callable[[Any], Any]:
    trees = [e.tree_ for e in estimator.estimators_]
    classes = estimator.classes_
    n_classes = len(classes)
    n_features = estimator.n_features_in_
    flat = _flat(trees, n_classes, n_features)

    def predict(X: Any) -> Any:
        array = _as_float32(X, n_features)
        if array is None:
            return estimator.predict(X)
        if flat is not None and len(array) <= SMALL_BATCH:
            return classes.take(np.argmax(_sum_in_order(flat.leaf_values(array)), axis=1), axis=0)
        total = trees[0].predict(array)[:, :n_classes].copy()
        for tree in trees[1:]:
            total += tree.predict(array)[:, :n_classes]
        return classes.take(np.argmax(total, axis=1), axis=0)

    return predict


def _regressor(estimator: Any) -> Callable[[Any], Any]:
    trees = [e.tree_ for e in estimator.estimators_]
    n_features = estimator.n_features_in_
    flat = _flat(trees, 1, n_features)

    def predict(X: Any) -> Any:
        array = _as_float32(X, n_features)
        if array is None:
            return estimator.predict(X)
        if flat is not None and len(array) <= SMALL_BATCH:
            return _sum_in_order(flat.leaf_values(array)[:, :, 0]) / len(trees)
        total = np.zeros(len(array), dtype=np.float64)
        for tree in trees:
            total += tree.predict(array)[:, 0]
        return total / len(trees)

    return predict


def _probe(estimator: Any) -> np.ndarray:
    """Rows that reach many leaves: values around every split threshold."""
    rng = np.random.default_rng(0)
    n_features = estimator.n_features_in_
    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    for tree in (e.tree_ for e in estimator.estimators_[:10]):
        for feature, threshold in zip(tree.feature, tree.threshold, strict=True):
            if feature >= 0:
                thresholds[feature].append(float(threshold))
    columns = []
    for values in thresholds:
        pool = np.asarray(values or [0.0])
        spread = float(np.std(pool)) or 1.0
        columns.append(rng.choice(pool, PROBE_ROWS) + rng.normal(0, spread / 4, PROBE_ROWS))
    return np.column_stack(columns)
