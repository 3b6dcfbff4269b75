"""Nested runs, datasets, search filters and ordering, pagination, delete and restore,
with the real mlflow client. Prints one RESULT JSON line."""

import json
import math

import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType
import pandas as pd

client = MlflowClient()
mlflow.set_experiment("search-demo")
with mlflow.start_run(run_name="sweep") as parent:
    for i in range(7):
        with mlflow.start_run(run_name=f"trial-{i}", nested=True):
            mlflow.log_params({"solver": "lbfgs" if i % 2 else "sgd", "layer name": f"l{i}"})
            mlflow.log_metric("acc", i / 10)
            mlflow.set_tag("stage", "even" if i % 2 == 0 else "odd")
    df = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    mlflow.log_input(mlflow.data.from_pandas(df, name="toy"), context="training")
    mlflow.log_metric("weird", float("nan"))
exp_id = parent.info.experiment_id
out = {}


def names(runs):
    return [r.info.run_name for r in runs]


out["filtered"] = names(
    client.search_runs([exp_id], "metrics.acc >= 0.2 AND params.solver = 'lbfgs'", order_by=["metrics.acc DESC"])
)
out["backticks"] = names(
    client.search_runs([exp_id], "params.`layer name` IN ('l1', 'l2')", order_by=["params.`layer name`"])
)
out["like"] = len(client.search_runs([exp_id], "attributes.run_name LIKE 'trial-%'"))
out["tags"] = len(client.search_runs([exp_id], "tags.stage = 'even'"))
out["children"] = len(client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"))
out["dataset"] = names(client.search_runs([exp_id], "datasets.name = 'toy' AND datasets.context = 'training'"))
weird = client.get_run(parent.info.run_id).data.metrics["weird"]
out["nan"] = math.isnan(weird)
pages, token = [], None
while True:
    page = client.search_runs([exp_id], max_results=3, page_token=token, order_by=["attributes.start_time ASC"])
    pages.append(names(page))
    token = page.token
    if not token:
        break
out["pages"] = pages
victim = client.search_runs([exp_id], "attributes.run_name = 'trial-3'")[0]
client.delete_run(victim.info.run_id)
out["after_delete"] = len(client.search_runs([exp_id]))
out["deleted_only"] = names(client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY))
client.restore_run(victim.info.run_id)
out["after_restore"] = len(client.search_runs([exp_id]))
try:
    client.log_param(victim.info.run_id, "solver", "changed")
    out["param_change"] = "accepted"
except mlflow.exceptions.MlflowException as exc:
    out["param_change"] = exc.error_code
try:
    client.search_runs([exp_id], "metrics.acc >> 1")
    out["bad_filter"] = "accepted"
except mlflow.exceptions.MlflowException as exc:
    out["bad_filter"] = exc.error_code
out["inputs"] = [d.dataset.name for d in client.get_run(parent.info.run_id).inputs.dataset_inputs]
print("RESULT " + json.dumps(out))
