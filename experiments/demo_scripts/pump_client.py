"""The demo's data scientist: real `mlflow` client calls against MLFLOW_TRACKING_URI.

Run by experiments.demo in a subprocess (the client keeps its tracking URI and
credentials in process-global state). Trains small models on a synthetic pump-sensor
data set: a logistic-regression baseline, a gradient-boosting sweep as child runs of
one parent, a run that failed, and registers two versions of one model with aliases.
Prints `RESULT {json}` at the end."""

from importlib.metadata import version
import json
import os
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import DatasetInput, InputTag, Metric, Param  # noqa: E402
from mlflow.tracking.context.registry import resolve_tags  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

EXPERIMENT = sys.argv[1] if len(sys.argv) > 1 else "pump-failure"
MODEL_NAME = sys.argv[2] if len(sys.argv) > 2 else "pump-failure-classifier"
CONTEXT = "mlflow.data.context"
DATA_SOURCE = "s3://plant-data/pump-sensors/2026-10.parquet"
FEATURES = ["vibration_rms", "bearing_temp_c", "pressure_bar", "flow_m3h", "rpm", "hours_since_service"]


# Given, so that log_model does not spawn a process to infer them (seconds each).
REQUIREMENTS = [f"scikit-learn=={sklearn.__version__}", f"skops=={version('skops')}"]


def pump_data(n: int = 1200, seed: int = 7) -> pd.DataFrame:
    """Sensor readings where failures follow vibration, heat and time since service."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "vibration_rms": rng.gamma(2.0, 1.2, n),
            "bearing_temp_c": rng.normal(62, 8, n),
            "pressure_bar": rng.normal(6, 0.8, n),
            "flow_m3h": rng.normal(120, 15, n),
            "rpm": rng.normal(2900, 120, n),
            "hours_since_service": rng.uniform(0, 4000, n),
        }
    )
    risk = (
        0.9 * (df.vibration_rms - 2.4)
        + 0.12 * (df.bearing_temp_c - 62)
        + 0.0009 * (df.hours_since_service - 2000)
        - 0.4 * (df.pressure_bar - 6)
        + rng.normal(0, 0.9, n)
    )
    df["failure_7d"] = (risk > 1.1).astype(int)
    return df


def scores(model, X, y) -> dict[str, float]:
    proba = model.predict_proba(X)[:, 1]
    pred = (proba >= 0.5).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, proba)),
        "f1": float(f1_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred)),
        "accuracy": float((pred == y).mean()),
    }


def staged_log_loss(model, X, y) -> list[float]:
    """Log loss after each boosting stage (numpy: sklearn's metric validates its input
    on every call, which costs more than the model here)."""
    y = np.asarray(y)
    out = []
    for proba in model.staged_predict_proba(X):
        p = np.clip(proba[:, 1], 1e-15, 1 - 1e-15)
        out.append(float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))))
    return out


def log_curve_plot(values: list[float], path: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 3), dpi=90)
    ax.plot(range(len(values)), values, color="#3358d4")
    ax.set_xlabel("boosting stage")
    ax.set_ylabel("validation log loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    started = time.monotonic()
    client = MlflowClient()
    df = pump_data()
    train, val = train_test_split(df, test_size=0.25, random_state=0, stratify=df.failure_7d)
    X_train, y_train, X_val, y_val = train[FEATURES], train.failure_7d, val[FEATURES], val.failure_7d
    dataset = mlflow.data.from_pandas(train, source=DATA_SOURCE, name="pump-sensors")
    val_set = mlflow.data.from_pandas(val, source=DATA_SOURCE, name="pump-sensors-val")
    experiment = mlflow.set_experiment(EXPERIMENT)
    client.set_experiment_tag(experiment.experiment_id, "mlflow.note.content", "Predict pump failures 7 days ahead.")
    out: dict = {"experiment_id": experiment.experiment_id}
    work = tempfile.mkdtemp()

    context_tags = resolve_tags({"team": "maintenance-analytics"})  # source name, git commit, user

    def log_run(name, params, metrics=(), tags=None, inputs=(), parent=None, status="FINISHED") -> str:
        """One run in four calls: create (with tags), one log_batch, inputs, end."""
        run_tags = {**context_tags, **(tags or {})}
        if parent:
            run_tags["mlflow.parentRunId"] = parent
        run_id = client.create_run(experiment.experiment_id, run_name=name, tags=run_tags).info.run_id
        now = int(time.time() * 1000)
        batch = [m if isinstance(m, Metric) else Metric(m[0], m[1], now, 0) for m in metrics]
        client.log_batch(run_id, metrics=batch[:1000], params=[Param(k, str(v)) for k, v in params.items()])
        for start in range(1000, len(batch), 1000):
            client.log_batch(run_id, metrics=batch[start : start + 1000])
        if inputs:
            client.log_inputs(
                run_id, datasets=[DatasetInput(d._to_mlflow_entity(), [InputTag(CONTEXT, c)]) for d, c in inputs]
            )
        client.set_terminated(run_id, status=status)
        return run_id

    baselines = []
    for C in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0):
        model = LogisticRegression(C=C, max_iter=500).fit(X_train, y_train)
        result = scores(model, X_val, y_val)
        run_id = log_run(
            f"logreg-C{C}",
            {"model": "logistic_regression", "C": C, "features": len(FEATURES)},
            result.items(),
            {"stage": "baseline"},
            [(dataset, "training"), (val_set, "validation")],
        )
        baselines.append((run_id, model, result["roc_auc"]))

    out["t_baselines"] = round(time.monotonic() - started, 1)
    best = None
    parent = client.create_run(
        experiment.experiment_id, run_name="gbm-sweep", tags={**context_tags, "stage": "sweep"}
    ).info.run_id
    grid = [(lr, depth, n) for lr in (0.05, 0.1, 0.2) for depth in (2, 3) for n in (30, 60, 90)]
    for lr, depth, n in grid:
        model = GradientBoostingClassifier(learning_rate=lr, max_depth=depth, n_estimators=n, random_state=0)
        model.fit(X_train, y_train)
        now = int(time.time() * 1000)
        curve = staged_log_loss(model, X_val, y_val)
        history = [Metric("val_loss", v, now + i * 40, i) for i, v in enumerate(curve)]
        history += [
            Metric("train_loss", v, now + i * 40, i) for i, v in enumerate(staged_log_loss(model, X_train, y_train))
        ]
        result = scores(model, X_val, y_val)
        run_id = log_run(
            f"gbm-lr{lr}-d{depth}-n{n}",
            {"model": "gradient_boosting", "learning_rate": lr, "max_depth": depth, "n_estimators": n},
            [*result.items(), *history],
            {"stage": "sweep"},
            [(dataset, "training")],
            parent=parent,
        )
        if best is None or result["roc_auc"] > best[2]:
            best = (run_id, model, result["roc_auc"], curve)
    client.log_batch(
        parent, metrics=[Metric("best_roc_auc", best[2], int(time.time() * 1000), 0)], params=[Param("search", "grid")]
    )
    client.set_terminated(parent)
    out["parent_run"] = parent

    with mlflow.start_run(run_name="gbm-full-history") as failed:
        mlflow.log_params({"model": "gradient_boosting", "n_estimators": 2000})
        mlflow.log_text("MemoryError while loading 5 years of sensor history.\n", "error.txt")
        mlflow.end_run(status="FAILED")
    out["failed_run"] = failed.info.run_id

    # Version 1: the best baseline; version 2: the best of the sweep.
    baseline_id, baseline_model, _ = max(baselines, key=lambda b: b[2])
    with mlflow.start_run(run_id=baseline_id):
        mlflow.sklearn.log_model(
            baseline_model,
            name="model",
            input_example=X_val.iloc[:3],
            registered_model_name=MODEL_NAME,
            serialization_format="skops",
            pip_requirements=REQUIREMENTS,
        )
    out["t_v1"] = round(time.monotonic() - started, 1)
    best_id, best_model, _, curve = best
    with mlflow.start_run(run_id=best_id):
        log_curve_plot(curve, os.path.join(work, "val_loss.png"))
        mlflow.log_artifact(os.path.join(work, "val_loss.png"), "plots")
        importance = pd.DataFrame({"feature": FEATURES, "importance": best_model.feature_importances_})
        importance.sort_values("importance", ascending=False).to_csv(os.path.join(work, "importance.csv"), index=False)
        mlflow.log_artifact(os.path.join(work, "importance.csv"))
        mlflow.log_dict({"threshold": 0.5, "features": FEATURES, "label": "failure_7d"}, "config.json")
        mlflow.log_text("Best of the sweep by validation ROC AUC.\n", "README.md")
        mlflow.sklearn.log_model(
            best_model,
            name="model",
            input_example=X_val.iloc[:3],
            registered_model_name=MODEL_NAME,
            serialization_format="skops",
            pip_requirements=REQUIREMENTS,
            # Our own model, trained just now: its tree arrays are safe to load.
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    versions = sorted(client.search_model_versions(f"name='{MODEL_NAME}'"), key=lambda v: int(v.version))
    out["versions"] = [v.version for v in versions]
    client.set_registered_model_alias(MODEL_NAME, "baseline", versions[0].version)
    client.set_registered_model_alias(MODEL_NAME, "champion", versions[-1].version)
    client.update_registered_model(MODEL_NAME, description="Flags pumps likely to fail within 7 days.")
    out["best_run"] = best_id
    out["seconds"] = round(time.monotonic() - started, 1)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
