"""The wire sequence of ../../../../shared/reference/mlflow-client-wire.md, driven by the
real mlflow client against MLFLOW_TRACKING_URI. Prints one JSON line of results."""

import json
import os
from pathlib import Path
import sys
import tempfile

import mlflow
from mlflow import MlflowClient
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

experiment_name = sys.argv[1] if len(sys.argv) > 1 else "wire-demo"
out = {}
mlflow.set_experiment(experiment_name)
X, y = load_iris(return_X_y=True)
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_param("C", 0.5)
    mlflow.log_params({"solver": "lbfgs", "max_iter": 200})
    for step, loss in enumerate([1.0, 0.6, 0.3]):
        mlflow.log_metric("loss", loss, step=step)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.88})
    mlflow.set_tag("team", "wire")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("child_metric", 1.5)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notes.txt")
        with open(path, "w") as fh:
            fh.write("hello artifacts")
        mlflow.log_artifact(path)
    mlflow.log_dict({"a": 1}, "cfg/config.json")
    clf = LogisticRegression(C=0.5, max_iter=200).fit(X, y)
    info = mlflow.sklearn.log_model(
        clf, name="model", registered_model_name="iris-clf", input_example=X[:2], serialization_format="skops"
    )
client = MlflowClient()
versions = client.search_model_versions("name='iris-clf'")
client.set_registered_model_alias("iris-clf", "champion", versions[0].version)
loaded = mlflow.pyfunc.load_model("models:/iris-clf@champion")
pred = loaded.predict(X[:3])
out["pred"] = np.asarray(pred).tolist()
exp = mlflow.get_experiment_by_name(experiment_name)
runs = mlflow.search_runs([exp.experiment_id], filter_string="metrics.acc > 0.5", output_format="list")
out["search"] = [r.info.run_name for r in runs]
out["artifacts"] = sorted(f.path for f in client.list_artifacts(parent.info.run_id))
out["cfg"] = client.list_artifacts(parent.info.run_id, "cfg")[0].path
out["child_parent"] = client.get_run(child.info.run_id).data.tags.get("mlflow.parentRunId") == parent.info.run_id
out["parent_status"] = client.get_run(parent.info.run_id).info.status
out["loss_history"] = [m.value for m in client.get_metric_history(parent.info.run_id, "loss")]
out["model_id"] = info.model_id
out["experiment_id"] = exp.experiment_id
out["parent_id"] = parent.info.run_id
out["version"] = versions[0].version
dl = client.download_artifacts(parent.info.run_id, "notes.txt", tempfile.mkdtemp())
out["notes"] = Path(dl).read_text()
print("RESULT " + json.dumps(out))
