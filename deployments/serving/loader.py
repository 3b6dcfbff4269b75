"""Loading MLflow-format model directories, once per revision per process.

Fast path: the sklearn flavor saved with skops (MLflow 3's default) is loaded straight
into the estimator and called on a numpy batch. skops refuses types it does not know;
we accept only scikit-learn / numpy / scipy types, never the allow-list the model's own
MLmodel carries (a crafted model could list anything there), and check every decision
tree's node arrays before the first predict, because sklearn indexes them unchecked.
Pickle-based formats (pickle, cloudpickle, other pyfunc flavors) execute code while
loading: they load only for a version its owner marked trusted.

Which loader serves a revision (recorded on it, shown on the endpoint page):
- `sklearn-fast`: a forest evaluated tree by tree (accel.py), checked against the
  estimator's own predict at load time;
- `sklearn`: the estimator's own predict (other estimators, or the fast path off);
- `xgboost-native` / `lightgbm-native`: the booster's own file format (no pickle)
  loaded by the library and called on the batch matrix, without MLflow's pyfunc
  wrapper around it; xgboost and lightgbm are imported only when the flavor is there;
- `pyfunc`: `mlflow.pyfunc.load_model(...).predict`, the generic path for any
  `python_function` model (custom PythonModels, and boosters with the fast path off).
The fast path (every loader but `pyfunc` for a model that has one) can be switched off
per endpoint and per process (`MLP_SERVING_FAST_PATH=0`)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
import warnings

import numpy as np
import yaml

from deployments.serving.accel import accelerate
from deployments.serving.schema import PANDAS_DTYPES, InputSchema

SAFE_TYPE_ROOTS = ("sklearn.", "numpy.", "scipy.")
# sklearn warns on every numpy call to an estimator fitted on a DataFrame; the schema
# check has already matched columns by name and put them in the fitted order.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


class ModelLoadError(Exception):
    pass


SKLEARN_FAST = "sklearn-fast"
SKLEARN = "sklearn"
XGBOOST_NATIVE = "xgboost-native"
LIGHTGBM_NATIVE = "lightgbm-native"
PYFUNC = "pyfunc"
LOADERS = (SKLEARN_FAST, SKLEARN, XGBOOST_NATIVE, LIGHTGBM_NATIVE, PYFUNC)
# MLflow flavors whose pyfunc loader reads the library's own file format, not a
# pickle: loading them through mlflow.pyfunc runs no code from the model directory.
NATIVE_PYFUNC_MODULES = {"mlflow.xgboost", "mlflow.lightgbm"}


@dataclass
class LoadedModel:
    predict: Callable[[Any], Any]
    schema: InputSchema | None
    flavor: str
    # Which code path serves this model (one of LOADERS), shown on the endpoint page.
    loader: str = PYFUNC
    # The MLmodel's signature (JSON strings), for the Open Inference Protocol's metadata.
    signature_inputs: str | None = None
    signature_outputs: str | None = None
    # Set after the warm-up: a predict fast enough to run on the event loop itself.
    inline: bool = False

    @property
    def accelerated(self) -> bool:
        return self.loader == SKLEARN_FAST


def read_mlmodel(model_dir: Path) -> dict:
    mlmodel = Path(model_dir) / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(f"{model_dir} holds no MLmodel file")
    return yaml.safe_load(mlmodel.read_text()) or {}


def load_model(model_dir: str | Path, *, trusted: bool = False, fast_path: bool = True) -> LoadedModel:
    model_dir = Path(model_dir)
    meta = read_mlmodel(model_dir)
    signature = meta.get("signature") or {}
    schema = InputSchema.from_signature(signature.get("inputs"))
    model = _load_flavor(model_dir, meta, schema, trusted=trusted, fast_path=fast_path)
    model.signature_inputs, model.signature_outputs = signature.get("inputs"), signature.get("outputs")
    return model


def _load_flavor(
    model_dir: Path, meta: dict, schema: InputSchema | None, *, trusted: bool, fast_path: bool
) -> LoadedModel:
    flavors = meta.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    if "sklearn" in flavors:
        predict_fn = pyfunc.get("predict_fn") or "predict"
        estimator = _load_sklearn(model_dir, flavors["sklearn"], trusted=trusted)
        method = getattr(estimator, predict_fn, None)
        if method is None:
            raise ModelLoadError(f"the estimator has no method {predict_fn}")
        fast = accelerate(estimator, predict_fn) if fast_path else None
        return LoadedModel(
            predict=fast or method, schema=schema, flavor="sklearn", loader=SKLEARN_FAST if fast else SKLEARN
        )
    if fast_path and "xgboost" in flavors:
        from deployments.serving import boosters

        predict = boosters.load_xgboost(_inside(model_dir, flavors["xgboost"].get("data", "")), flavors["xgboost"])
        return LoadedModel(predict=predict, schema=schema, flavor="xgboost", loader=XGBOOST_NATIVE)
    if fast_path and "lightgbm" in flavors and _lightgbm_native(flavors["lightgbm"]):
        from deployments.serving import boosters

        predict = boosters.load_lightgbm(_inside(model_dir, flavors["lightgbm"]["data"]))
        return LoadedModel(predict=predict, schema=schema, flavor="lightgbm", loader=LIGHTGBM_NATIVE)
    if pyfunc:
        native = pyfunc.get("loader_module") in NATIVE_PYFUNC_MODULES and _native_files(flavors)
        predict = _named_columns(_load_pyfunc(model_dir, trusted=trusted, native=native), schema)
        module = str(pyfunc.get("loader_module") or "")
        flavor = module.removeprefix("mlflow.") if module in NATIVE_PYFUNC_MODULES else "python_function"
        return LoadedModel(predict=predict, schema=schema, flavor=flavor, loader=PYFUNC)
    raise ModelLoadError(f"no loadable flavor among {sorted(flavors)}")


def _lightgbm_native(conf: dict) -> bool:
    """mlflow.lightgbm saves a Booster in LightGBM's text format, and the sklearn API's
    models (LGBMClassifier, ...) as a pickle or skops file."""
    return str(conf.get("data", "")).endswith(".lgb")


def _native_files(flavors: dict) -> bool:
    if "xgboost" in flavors:
        return True
    return "lightgbm" in flavors and _lightgbm_native(flavors["lightgbm"])


def _load_sklearn(model_dir: Path, conf: dict, *, trusted: bool) -> Any:
    fmt = conf.get("serialization_format", "pickle")
    path = _inside(model_dir, conf.get("pickled_model") or "model.pkl")
    if fmt == "skops":
        estimator = _load_skops(path, trusted=trusted)
    elif fmt in {"pickle", "cloudpickle"}:
        if not trusted:
            raise ModelLoadError(
                f"this version is saved with {fmt}, which runs code while loading; an owner must mark it trusted"
            )
        import cloudpickle

        with path.open("rb") as handle:
            estimator = cloudpickle.load(handle)
    else:
        raise ModelLoadError(f"unknown sklearn serialization format {fmt!r}")
    check_trees(estimator)
    return estimator


def _load_skops(path: Path, *, trusted: bool) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(SAFE_TYPE_ROOTS)]
    if refused and not trusted:
        raise ModelLoadError(f"the model file holds types the platform does not load untrusted: {refused}")
    return skops.io.load(path, trusted=untrusted)


def _load_pyfunc(model_dir: Path, *, trusted: bool, native: bool = False) -> Callable[[Any], Any]:
    """`native`: the flavor reads its library's own format, so no trust is needed."""
    if not (trusted or native):
        raise ModelLoadError(
            "python_function models other than sklearn, XGBoost and LightGBM boosters load only for versions "
            "marked trusted"
        )
    try:
        import mlflow.pyfunc
    except ImportError:
        raise ModelLoadError("mlflow is not installed in this serving process")
    if trusted:
        import os

        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    return mlflow.pyfunc.load_model(str(model_dir)).predict


def _named_columns(predict: Callable[[Any], Any], schema: InputSchema | None) -> Callable[[Any], Any]:
    """The schema check hands all-numeric inputs over as a bare matrix (the sklearn fast
    path); a pyfunc model enforces its column signature by name, so it gets a
    DataFrame with the signature's column names."""
    if schema is None or not schema.columns:
        return predict
    names = schema.names
    dtypes = {c.name: PANDAS_DTYPES[c.type] for c in schema.columns if c.type in PANDAS_DTYPES}

    def call(data: Any) -> Any:
        if isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] == len(names):
            import pandas as pd

            data = pd.DataFrame(data, columns=names).astype(dtypes)
        return predict(data)

    return call


def _inside(model_dir: Path, relative: str) -> Path:
    path = (model_dir / relative).resolve()
    if not path.is_relative_to(model_dir.resolve()) or not path.is_file():
        raise ModelLoadError(f"model file {relative!r} is missing or outside the model directory")
    return path


def check_trees(obj: Any, depth: int = 0) -> None:
    """Refuse decision trees whose node arrays point outside themselves (skops loads
    them fine; sklearn's predict would then read out of bounds)."""
    if depth > 6:
        return
    tree = getattr(obj, "tree_", None)
    if tree is not None:
        _check_tree(tree, getattr(obj, "n_features_in_", None))
    children: list = []
    for name in ("estimators_", "steps", "estimator", "estimator_", "transformers_"):
        value = getattr(obj, name, None)
        if value is None:
            continue
        children.extend(np.ravel(np.asarray(value, dtype=object)) if name == "estimators_" else [value])
    for child in children:
        if isinstance(child, tuple):
            child = child[1]
        check_trees(child, depth + 1)


def _check_tree(tree: Any, n_features: int | None) -> None:
    n = tree.node_count
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    if len(left) != n or len(right) != n or len(feature) != n:
        raise ModelLoadError("a decision tree's node arrays disagree with its node count")
    inner = left != -1
    if np.any((left[inner] <= 0) | (left[inner] >= n) | (right[inner] <= 0) | (right[inner] >= n)):
        raise ModelLoadError("a decision tree points to nodes outside itself")
    if n_features is not None and np.any((feature[inner] < 0) | (feature[inner] >= n_features)):
        raise ModelLoadError("a decision tree splits on a feature the model does not have")
    if tree.value.shape[0] != n:
        raise ModelLoadError("a decision tree's leaf values disagree with its node count")
