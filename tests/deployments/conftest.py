"""Model directories saved with mlflow.sklearn.save_model (skops, MLflow 3's default),
and a serving app on uvicorn in a thread, for the data-plane tests."""

from pathlib import Path
import tempfile
import threading
import time

import pytest

from tests.conftest import free_port

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROW = [5.1, 3.5, 1.4, 0.2]


class Exploding:
    """A model that loads and warms up (all-zero rows) but raises on real inputs: the
    "model that raises" of the reliability tests. Pickled, so served only as trusted."""

    def predict(self, X):
        import numpy as np

        if np.any(np.asarray(X) > 0):
            raise RuntimeError("boom: this model cannot score that")
        return np.zeros(len(X), dtype=int)


def _save_exploding(path: Path) -> Path:
    from mlflow.models import infer_signature
    import mlflow.sklearn
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.sklearn.save_model(
        Exploding(),
        str(path),
        signature=infer_signature(X, y),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
    return path


class Threshold:
    """A custom pyfunc model with a named column signature (the wrapped-model case):
    MLflow enforces its signature by column name on every call, the warm-up too."""

    def predict(self, context, model_input, params=None):
        return [int(v > 3) for v in model_input["petal length (cm)"]]


def save_pyfunc(path: Path, *, example: bool) -> Path:
    from mlflow.models import infer_signature
    import mlflow.pyfunc
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    model = type("ThresholdModel", (mlflow.pyfunc.PythonModel,), {"predict": Threshold.predict})()
    mlflow.pyfunc.save_model(
        str(path),
        python_model=model,
        signature=infer_signature(X, [0] * len(X)),
        input_example=X.head(2) if example else None,
        pip_requirements=["scikit-learn"],
    )
    return path


def _save(
    path: Path, *, trees: int = 10, seed: int = 0, broken: bool = False, fmt: str = "skops", depth: int | None = None
) -> Path:
    from mlflow.models import infer_signature
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    if broken:
        # Fitted on 5 features, signed for 4: validation passes, predict raises.
        fitted = X.assign(extra=1.0)
        model = RandomForestClassifier(n_estimators=trees, random_state=seed).fit(fitted, y)
        signature = infer_signature(X, y)
    else:
        model = RandomForestClassifier(n_estimators=trees, random_state=seed, max_depth=depth).fit(X, y)
        signature = infer_signature(X, model.predict(X))
    kwargs = {"skops_trusted_types": ["sklearn.tree._tree.Tree"]} if fmt == "skops" else {}
    # Explicit requirements: inferring them runs the model in a subprocess (slow).
    mlflow.sklearn.save_model(
        model, str(path), signature=signature, serialization_format=fmt, pip_requirements=["scikit-learn"], **kwargs
    )
    return path


def make_model_dirs() -> dict[str, Path]:
    root = Path(tempfile.mkdtemp(prefix="mlp-models-"))
    return {
        "iris": _save(root / "iris"),
        "iris2": _save(root / "iris2", seed=1),
        "weak": _save(root / "weak", depth=1),
        "broken": _save_exploding(root / "broken"),
        "pickled": _save(root / "pickled", fmt="cloudpickle"),
        "pyfunc": save_pyfunc(root / "pyfunc", example=True),
        "pyfunc_signature_only": save_pyfunc(root / "pyfunc_signature_only", example=False),
    }


@pytest.fixture(scope="session")
def model_dirs():
    return make_model_dirs()


class ServerThread:
    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.app = app
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def serve(tmp_path):
    """serve(*endpoint_specs) -> (server, source, sink): a ServingApp on StaticSource,
    logging into a MemorySink."""
    from deployments.serving.app import ServingApp
    from deployments.serving.config import StaticSource
    from deployments.serving.predlog import MemorySink, Spool

    servers = []

    def start(*specs, poll_interval: float = 0.05):
        source, sink = StaticSource(list(specs)), MemorySink()
        app = ServingApp(
            source=source, spool=Spool(tmp_path / "spool", sink=sink, interval=0.05), poll_interval=poll_interval
        )
        server = ServerThread(app).__enter__()
        servers.append(server)
        return server, source, sink

    yield start
    for server in servers:
        server.__exit__()


def split_body(rows=None, columns=None):
    return {"dataframe_split": {"columns": columns or COLUMNS, "data": rows or [ROW]}}


def register_version(*, project, user, model_dir: Path, name: str = "iris", metrics: dict | None = None):
    """A registered model version holding `model_dir`'s files, the way the MLflow
    client would leave it: a run (with metrics), a logged model, a version."""
    import shutil

    from experiments import services as exp_services
    from experiments.artifacts import model_local_dir
    from registry import services as registry_services
    from registry.models import RegisteredModel

    experiment = exp_services.experiment_get_or_create(project=project, name="train", user=user)
    run = exp_services.run_create(experiment=experiment, user=user)
    if metrics:
        exp_services.run_log_batch(run=run, metrics=[(k, v, 0, int(time.time() * 1000)) for k, v in metrics.items()])
    logged = exp_services.logged_model_create(experiment=experiment, user=user, name="model", source_run=run)
    target = model_local_dir(logged)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, target, dirs_exist_ok=True)
    model = RegisteredModel.objects.filter(project=project, name=name).first()
    if model is None:
        model = registry_services.registered_model_create(project=project, name=name, user=user)
    return registry_services.model_version_create(
        registered_model=model, source=f"models:/{logged.pk}", user=user, model_id=logged.pk
    )
