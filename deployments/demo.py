"""Demo data for `make run`: the demo project's pump-failure model served on a public
endpoint with a canary, and a small traffic generator (a periodic task, embedded mode
only) that sends predictions and ground truth, so the dashboard moves.

Serves the registry's demo model (`pump-failure-classifier`, logged by the tracking
demo through the real mlflow client): version 1 as champion, the latest as a 30%
canary. Without it, it trains two small versions on synthetic sensor data and
registers them, saved in MLflow's format (skops) without needing mlflow installed."""

import json
import logging
from pathlib import Path
import platform
import random
import urllib.request

from django.conf import settings
from django.db import transaction

from deployments import services
from deployments.models import Endpoint
from mlplatform.models import User
from projects.models import Project

logger = logging.getLogger(__name__)

ENDPOINT_SLUG = "pump-failure"
MODEL_NAME = "pump-failure"
FEATURES = ["vibration_mm_s", "temperature_c", "pressure_bar", "rpm"]


# The tracking demo's model (experiments/demo.py): its features and how its synthetic
# labels are made (experiments/demo_scripts/pump_client.py), so ground truth is sane.
REGISTRY_FEATURES = ["vibration_rms", "bearing_temp_c", "pressure_bar", "flow_m3h", "rpm", "hours_since_service"]


def _registry_sensors(rng: random.Random, n: int, shift: float = 0.0) -> tuple[list[list[float]], list[int]]:
    rows, labels = [], []
    for _ in range(n):
        vibration = rng.gammavariate(2.0, 1.2) + shift
        temperature, pressure = rng.gauss(62, 8), rng.gauss(6, 0.8)
        flow, rpm, hours = rng.gauss(120, 15), rng.gauss(2900, 120), rng.uniform(0, 4000)
        risk = 0.9 * (vibration - 2.4) + 0.12 * (temperature - 62) + 0.0009 * (hours - 2000) - 0.4 * (pressure - 6)
        rows.append([vibration, temperature, pressure, flow, rpm, hours])
        labels.append(int(risk + rng.gauss(0, 0.9) > 1.1))
    return rows, labels


def _registry_demo_versions(project: Project) -> list:
    from experiments.demo import DEMO_MODEL
    from registry.models import RegisteredModel

    model = RegisteredModel.objects.filter(project=project, name=DEMO_MODEL).first()
    return list(model.versions.order_by("version")) if model is not None else []


def _generator(model_name: str):
    from experiments.demo import DEMO_MODEL

    return (REGISTRY_FEATURES, _registry_sensors) if model_name == DEMO_MODEL else (FEATURES, _sensors)


def _sensors(rng: random.Random, n: int, shift: float = 0.0) -> tuple[list[list[float]], list[int]]:
    rows, labels = [], []
    for _ in range(n):
        failing = rng.random() < 0.3
        vibration = rng.gauss(7.5 if failing else 3.0, 1.2) + shift
        temperature = rng.gauss(78 if failing else 62, 6)
        pressure = rng.gauss(4.2 if failing else 5.0, 0.4)
        rpm = rng.gauss(1450, 60)
        rows.append([round(vibration, 2), round(temperature, 1), round(pressure, 2), round(rpm)])
        labels.append(int(failing))
    return rows, labels


def _save_mlflow_model(directory: Path, estimator) -> None:
    """The files mlflow.sklearn.save_model writes for the skops format."""
    import sklearn
    import skops.io

    directory.mkdir(parents=True, exist_ok=True)
    skops.io.dump(estimator, directory / "model.skops")
    inputs = json.dumps([{"type": "double", "name": f, "required": True} for f in FEATURES])
    mlmodel = {
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.sklearn",
                "model_path": "model.skops",
                "predict_fn": "predict",
                "python_version": platform.python_version(),
                "env": {"virtualenv": "python_env.yaml"},
            },
            "sklearn": {
                "pickled_model": "model.skops",
                "serialization_format": "skops",
                "sklearn_version": sklearn.__version__,
                "skops_trusted_types": ["sklearn.tree._tree.Tree"],
                "code": None,
            },
        },
        "signature": {"inputs": inputs, "outputs": json.dumps([{"type": "long"}]), "params": None},
    }
    import yaml

    (directory / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    (directory / "requirements.txt").write_text(f"scikit-learn=={sklearn.__version__}\nskops\n")


def _register_versions(admin: User, project: Project) -> list:
    from sklearn.ensemble import RandomForestClassifier

    from experiments import services as exp_services
    from experiments.artifacts import model_local_dir
    from registry import services as registry_services
    from registry.models import RegisteredModel

    model = RegisteredModel.objects.filter(project=project, name=MODEL_NAME).first()
    if model is not None and model.versions.exists():
        return list(model.versions.order_by("version"))
    model = model or registry_services.registered_model_create(project=project, name=MODEL_NAME, user=admin)
    experiment = exp_services.experiment_get_or_create(project=project, name="pump-failure-training", user=admin)
    versions = []
    for trees, depth in ((30, 1), (60, None)):
        rows, labels = _sensors(random.Random(trees), 800)
        estimator = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0).fit(rows, labels)
        test_rows, test_labels = _sensors(random.Random(trees + 1), 300)
        accuracy = sum(int(p == y) for p, y in zip(estimator.predict(test_rows), test_labels, strict=True)) / 300
        run = exp_services.run_create(experiment=experiment, user=admin)
        exp_services.run_log_batch(run=run, metrics=[("accuracy", accuracy, 0, 0)], params={"n_estimators": str(trees)})
        logged = exp_services.logged_model_create(experiment=experiment, user=admin, name="model", source_run=run)
        _save_mlflow_model(model_local_dir(logged), estimator)
        versions.append(
            registry_services.model_version_create(
                registered_model=model, source=f"models:/{logged.pk}", user=admin, model_id=logged.pk
            )
        )
    return versions


@transaction.atomic
def seed(admin: User, project: Project) -> None:
    if Endpoint.objects.filter(slug=ENDPOINT_SLUG).exists():
        return
    # The registry's demo model (logged by the real mlflow client) when the tracking
    # demo made it; otherwise a small model of our own.
    versions = _registry_demo_versions(project) or _register_versions(admin, project)
    model_name = versions[0].registered_model.name
    features, sensors = _generator(model_name)
    endpoint, _ = services.endpoint_create(
        project=project,
        actor=admin,
        name="Pump failure",
        slug=ENDPOINT_SLUG,
        public=True,
        description="Scores sensor readings for the chance a pump fails this week (demo traffic in embedded mode).",
    )
    services.endpoint_update(endpoint=endpoint, actor=admin, policy={"min_feedback": 200, "offline_metric": "accuracy"})
    rows, _ = sensors(random.Random(7), 500)
    reference = {f: [r[i] for r in rows] for i, f in enumerate(features)}
    name = f"{project.slug}/{model_name}"
    services.revision_deploy(
        endpoint=endpoint, actor=admin, model_name=name, version=versions[0].version,
        reference=reference, gate_override_reason="demo data",
    )  # fmt: skip
    if len(versions) > 1:
        services.revision_deploy(
            endpoint=endpoint, actor=admin, model_name=name, version=versions[-1].version, role="canary",
            traffic=0.3, reference=reference, gate_override_reason="demo data",
        )  # fmt: skip


def traffic_burst(*, base_url: str, requests: int = 20) -> int:
    """Send demo predictions (with a slow drift in vibration) and ground truth for
    most of them; returns how many were answered."""
    endpoint = Endpoint.objects.filter(slug=ENDPOINT_SLUG).first()
    if endpoint is None or endpoint.champion_id is None:
        return 0
    rng = random.Random()
    answered = 0
    features, sensors = _generator(endpoint.champion.model_name)
    for _ in range(requests):
        rows, labels = sensors(rng, rng.randint(1, 5), shift=rng.random() * 0.6)
        body = json.dumps({"dataframe_split": {"columns": features, "data": rows}}).encode()
        try:
            request_id = _post(f"{base_url}/serve/{ENDPOINT_SLUG}/invocations", body)
        except OSError:
            continue
        answered += 1
        if rng.random() < 0.8:
            feedback = json.dumps({"request_id": request_id, "actual": labels}).encode()
            try:
                _post(f"{base_url}/serve/{ENDPOINT_SLUG}/feedback", feedback)
            except OSError:
                pass
    return answered


def _post(url: str, body: bytes) -> str:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our own loopback URL from settings
        return response.headers.get("x-request-id", "")


def demo_traffic_enabled() -> bool:
    return bool(getattr(settings, "DEMO_TRAFFIC_URL", ""))
