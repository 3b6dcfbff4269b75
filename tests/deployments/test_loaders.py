"""Model types beyond sklearn's forests, through the real serving plane: XGBoost and
LightGBM boosters on their native loaders, any `python_function` model on the generic
path; which loader serves a revision (recorded, shown in the API and on the page);
and the fast path's switch, whose predictions must equal the model's own through
mlflow.pyfunc on random inputs."""

from dataclasses import replace
from pathlib import Path
import tempfile

import numpy as np
import pandas as pd
import pytest
import requests

from deployments import links, services
from deployments.plane import DatabaseSource, endpoint_spec
from deployments.serving.config import EndpointSpec, RevisionSpec
from tests.deployments.conftest import COLUMNS, register_version
from tests.deployments.test_oip import wait_for

# kind -> (loader with the fast path, loader without it)
LOADERS = {
    "forest": ("sklearn-fast", "sklearn"),
    "xgboost": ("xgboost-native", "pyfunc"),
    "xgboost_binary": ("xgboost-native", "pyfunc"),
    "lightgbm": ("lightgbm-native", "pyfunc"),
    "wrapped_forest": ("pyfunc", "pyfunc"),
}


class WrappedForest:
    """The forest wrapped as a generic PythonModel (MLflow calls it with a DataFrame)."""

    def load_context(self, context):
        import skops.io

        path = context.artifacts["forest"]
        self.forest = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))

    def predict(self, context, model_input, params=None):
        return self.forest.predict(model_input)


def _iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def _save_models(root: Path) -> dict[str, Path]:
    import lightgbm as lgb
    import mlflow.lightgbm
    from mlflow.models import infer_signature
    import mlflow.pyfunc
    import mlflow.sklearn
    import mlflow.xgboost
    from sklearn.ensemble import RandomForestClassifier
    import skops.io
    import xgboost as xgb

    X, y = _iris()
    dirs = {}
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    dirs["forest"] = root / "forest"
    mlflow.sklearn.save_model(
        forest,
        str(dirs["forest"]),
        signature=infer_signature(X, forest.predict(X)),
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        pip_requirements=["scikit-learn"],
    )
    classifier = xgb.XGBClassifier(n_estimators=15, max_depth=3).fit(X, y)
    dirs["xgboost"] = root / "xgboost"
    mlflow.xgboost.save_model(
        classifier, str(dirs["xgboost"]), signature=infer_signature(X, classifier.predict(X)), pip_requirements=["x"]
    )
    binary = xgb.XGBClassifier(n_estimators=10, max_depth=2).fit(X, (y == 2).astype(int))
    dirs["xgboost_binary"] = root / "xgboost_binary"
    mlflow.xgboost.save_model(
        binary, str(dirs["xgboost_binary"]), signature=infer_signature(X, binary.predict(X)), pip_requirements=["x"]
    )
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(X, y), 15)
    dirs["lightgbm"] = root / "lightgbm"
    mlflow.lightgbm.save_model(
        booster, str(dirs["lightgbm"]), signature=infer_signature(X, booster.predict(X)), pip_requirements=["x"]
    )
    skops.io.dump(forest, root / "forest.skops")
    model = type("WrappedForestModel", (mlflow.pyfunc.PythonModel,), dict(vars(WrappedForest)))()
    dirs["wrapped_forest"] = root / "wrapped"
    mlflow.pyfunc.save_model(
        str(dirs["wrapped_forest"]),
        python_model=model,
        artifacts={"forest": str(root / "forest.skops")},
        signature=infer_signature(X, forest.predict(X)),
        pip_requirements=["scikit-learn"],
    )
    return dirs


@pytest.fixture(scope="module")
def typed_models():
    return _save_models(Path(tempfile.mkdtemp(prefix="mlp-loaders-")))


def random_rows(n: int, seed: int) -> list[list[float]]:
    """Around and well outside the training range, so many leaves are reached."""
    X, _ = _iris()
    rng = np.random.default_rng(seed)
    rows = X.to_numpy()[rng.integers(0, len(X), n)] + rng.normal(0, 1.5, (n, 4))
    return np.round(rows, 3).tolist()


def own_predictions(model_dir: Path, rows: list[list[float]]) -> list:
    """The model's own predict, through MLflow's pyfunc (what `mlflow models serve` runs)."""
    import mlflow.pyfunc

    predicted = mlflow.pyfunc.load_model(str(model_dir)).predict(pd.DataFrame(rows, columns=COLUMNS))
    return np.asarray(predicted).ravel().tolist()


def mlflow_protocol(server, slug: str, rows) -> list:
    response = requests.post(
        server.url(f"/serve/{slug}/invocations"), json={"dataframe_split": {"columns": COLUMNS, "data": rows}}
    )
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["predictions"]).ravel().tolist()


def oip_infer(server, slug: str, rows) -> list:
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
    response = requests.post(server.url(f"/serve/{slug}/v2/models/{slug}/infer"), json=body)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["shape"][0] == len(rows)
    return np.asarray(output["data"]).ravel().tolist()


@pytest.mark.parametrize("kind", list(LOADERS))
def test_each_model_type_serves_its_own_predictions_with_and_without_the_fast_path(serve, typed_models, kind):
    # Given the same model on two endpoints, one with the fast path and one without
    model_dir, trusted = str(typed_models[kind]), kind == "wrapped_forest"
    server, source, sink = serve(
        EndpointSpec(id=1, slug="fast", champion=RevisionSpec(1, model_dir, trusted=trusted), public=True),
        EndpointSpec(
            id=2, slug="plain", champion=RevisionSpec(2, model_dir, trusted=trusted, fast_path=False), public=True
        ),
    )
    # Then each revision records the loader that serves it
    assert source.loaders == dict(zip((1, 2), LOADERS[kind], strict=True))
    # And on random inputs both protocols on both endpoints answer what the model's own
    # predict answers (one request of many rows, and rows one by one)
    rows = random_rows(150, seed=len(kind))
    expected = own_predictions(typed_models[kind], rows)
    for slug in ("fast", "plain"):
        assert mlflow_protocol(server, slug, rows) == expected
        assert oip_infer(server, slug, rows) == expected
    width = len(expected) // len(rows)
    for i, row in enumerate(rows[:20]):
        assert oip_infer(server, "fast", [row]) == expected[i * width : (i + 1) * width]
    # And the OIP metadata names the loader
    meta = requests.get(server.url("/serve/fast/v2/models/fast")).json()
    assert meta["parameters"]["loader"] == LOADERS[kind][0]
    wait_for(lambda: len([r for r in list(sink.records) if r.get("s") == 200]) >= 4 + 20)


def test_switching_the_fast_path_off_reloads_the_revision_with_its_own_predict(serve, typed_models):
    spec = EndpointSpec(id=1, slug="xgb", champion=RevisionSpec(7, str(typed_models["xgboost"])), public=True)
    server, source, _ = serve(spec)
    rows = random_rows(60, seed=3)
    before = mlflow_protocol(server, "xgb", rows)
    assert source.loaders[7] == "xgboost-native"
    source.update("xgb", champion=replace(spec.champion, fast_path=False))
    wait_for(lambda: source.loaders[7] == "pyfunc")
    wait_for(lambda: requests.get(server.url("/serve/xgb/v2/models/xgb")).json()["parameters"]["loader"] == "pyfunc")
    assert mlflow_protocol(server, "xgb", rows) == before == own_predictions(typed_models["xgboost"], rows)


def test_a_booster_saved_as_a_pickle_is_not_loaded_untrusted(serve, tmp_path):
    import lightgbm as lgb
    import mlflow.lightgbm

    X, y = _iris()
    # The sklearn API's LightGBM models are saved as a pickle/skops file, not natively.
    mlflow.lightgbm.save_model(
        lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y), str(tmp_path / "m"), pip_requirements=["x"]
    )
    _, source, _ = serve(EndpointSpec(id=1, slug="lgbc", champion=RevisionSpec(3, str(tmp_path / "m")), public=True))
    assert [(rid, ok) for rid, ok, _ in source.reports] == [(3, False)]
    assert "trusted" in source.reports[0][2] and 3 not in source.loaders


# -- the control plane: recorded on the revision, in the API and on the page ----------------


@pytest.fixture
def deployed(project, user, model_dirs, monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)
    endpoint = services.endpoint_create(project=project, actor=user, name="Iris")[0]
    version = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    revision = services.revision_deploy(
        endpoint=endpoint, actor=user, model_name=f"{project.slug}/iris", version=version.version
    )
    return endpoint, revision


def test_the_loader_is_recorded_shown_and_the_switch_reaches_the_serving_spec(api, client, user, deployed):
    endpoint, revision = deployed
    # When a serving process reports the revision loaded
    DatabaseSource().report(revision_id=revision.pk, loaded=True, error="warmed up", loader="sklearn-fast")
    revision.refresh_from_db()
    assert (revision.status, revision.loader) == ("ready", "sklearn-fast")
    # Then the REST API and the endpoint page show it
    data = api.get(f"/api/v1/endpoints/{endpoint.slug}/").data
    assert data["champion"]["loader"] == "sklearn-fast" and data["fast_path"] is True
    client.force_login(user)
    page = client.get(f"/deployments/{endpoint.slug}/")
    assert page.status_code == 200 and b"sklearn-fast" in page.content
    # When the fast path is switched off, the serving spec says so and the reload's
    # report updates the ready revision's loader
    assert api.patch(f"/api/v1/endpoints/{endpoint.slug}/", {"fast_path": False}, format="json").status_code == 200
    endpoint.refresh_from_db()
    assert endpoint_spec(endpoint).champion.fast_path is False
    DatabaseSource().report(revision_id=revision.pk, loaded=True, error="warmed up", loader="sklearn")
    assert api.get(f"/api/v1/endpoints/{endpoint.slug}/").data["champion"]["loader"] == "sklearn"
    # And a bad value is a 400 that changes nothing
    bad = api.patch(f"/api/v1/endpoints/{endpoint.slug}/", {"fast_path": "sometimes"}, format="json")
    assert bad.status_code == 400
    endpoint.refresh_from_db()
    assert endpoint.fast_path is False


def test_the_process_wide_setting_turns_every_fast_path_off(deployed, settings):
    endpoint, _ = deployed
    assert endpoint_spec(endpoint).champion.fast_path is True
    settings.SERVING_FAST_PATH = False
    assert endpoint_spec(endpoint).champion.fast_path is False


@pytest.mark.parametrize("kind", ["forest_classifier", "extra_trees_regressor"])
def test_the_forest_fast_path_equals_the_estimators_predict_for_every_batch_size(kind, monkeypatch):
    from sklearn.datasets import make_regression
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier

    from deployments.serving import accel

    if kind == "forest_classifier":
        X, y = _iris()
        X = X.to_numpy()
        estimator = RandomForestClassifier(n_estimators=30, random_state=1).fit(X, y)
    else:
        X, y = make_regression(400, 5, random_state=0)
        estimator = ExtraTreesRegressor(n_estimators=20, max_depth=12, random_state=0).fit(X, y)
    # The level-by-level walk is taken when timed quicker at load: here, always.
    timings = iter([0.0, 1.0])
    monkeypatch.setattr(accel, "_seconds", lambda call, repeat=5: next(timings))
    fast = accel.accelerate(estimator, "predict")
    assert fast is not None
    rng = np.random.default_rng(7)
    # Small batches take the level-by-level walk, larger ones the per-tree calls: both
    # must answer exactly what the estimator answers.
    for rows in [1, 2, 3, 7, accel.SMALL_BATCH, accel.SMALL_BATCH + 1, 40, 333]:
        batch = X[rng.integers(0, len(X), rows)] + rng.normal(0, X.std(axis=0), (rows, X.shape[1]))
        assert np.array_equal(fast(batch), estimator.predict(batch)), rows
