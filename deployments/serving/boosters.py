"""XGBoost and LightGBM boosters, loaded from their own file formats and called directly.

MLflow saves an XGBoost model (Booster or the sklearn API's XGBClassifier, ...) in
XGBoost's UBJSON/JSON format and a LightGBM Booster in LightGBM's text format: data the
library parses, not a pickle, so loading them runs no code from the model directory.
Served through `mlflow.pyfunc`, every call pays for the wrapper (a DataFrame, a
DMatrix, the sklearn API's checks); here the batch matrix the schema check built goes
straight to `inplace_predict` / `Booster.predict`, on one thread (the serving process
already keeps both cores busy; OpenMP's pool only adds hand-offs on small batches).

As with the forest fast path, the native call is used only after it matched the
model's own predict on random probe rows at load time; inputs it does not take (a
DataFrame with non-numeric columns) go to the model's own predict. The libraries are
imported here only, and only when a model of that flavor is loaded."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PROBE_ROWS = 256
Predict = Callable[[Any], Any]


class BoosterLoadError(Exception):
    pass


def load_xgboost(path: Path, conf: dict) -> Predict:
    try:
        import xgboost as xgb
    except ImportError:
        raise BoosterLoadError("this serving process has no xgboost installed (pip install xgboost)") from None
    model_class = str(conf.get("model_class") or "xgboost.core.Booster")
    if model_class.startswith("xgboost.sklearn."):
        wrapper = getattr(xgb, model_class.rsplit(".", 1)[1], None)
        if wrapper is None:
            raise BoosterLoadError(f"xgboost has no model class {model_class}")
        model = wrapper()
        model.load_model(str(path))
        booster, reference = model.get_booster(), model.predict
    else:
        booster = xgb.Booster()
        booster.load_model(str(path))
        model = None

        def reference(X: Any) -> Any:
            return booster.predict(xgb.DMatrix(X))

    booster.set_param({"nthread": 1})
    native = _xgboost_native(booster, model)
    return _checked(native, reference, booster.num_features())


def _xgboost_native(booster: Any, model: Any) -> Callable[[np.ndarray], Any]:
    """inplace_predict, then what the sklearn API's predict does with the scores."""
    from xgboost import XGBClassifier

    if not isinstance(model, XGBClassifier):
        return booster.inplace_predict
    softmax = getattr(model, "objective", None) == "multi:softmax"
    n_classes = getattr(model, "n_classes_", None)

    def classify(X: np.ndarray) -> Any:
        scores = booster.inplace_predict(X)
        if scores.ndim > 1 and n_classes != 2:
            return np.argmax(scores, axis=1)
        if scores.ndim > 1 and scores.shape[1] != 1:
            labels = np.zeros(scores.shape)
            labels[scores > 0.5] = 1
            return labels
        if softmax:
            return scores.astype(np.int32)
        labels = np.repeat(0, scores.shape[0])
        labels[scores > 0.5] = 1
        return labels

    return classify


def load_lightgbm(path: Path) -> Predict:
    try:
        import lightgbm as lgb
    except ImportError:
        raise BoosterLoadError("this serving process has no lightgbm installed (pip install lightgbm)") from None
    booster = lgb.Booster(model_file=str(path))

    def native(X: np.ndarray) -> Any:
        return booster.predict(X, num_threads=1)

    return _checked(native, booster.predict, booster.num_feature())


def _checked(native: Callable[[np.ndarray], Any], reference: Predict, n_features: int) -> Predict:
    probe = np.random.default_rng(0).normal(0, 3, (PROBE_ROWS, n_features))
    if not np.array_equal(np.asarray(native(probe)), np.asarray(reference(probe))):
        return reference

    def predict(X: Any) -> Any:
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == n_features and X.dtype.kind in "fiu":
            return native(X)
        return reference(X)

    return predict
