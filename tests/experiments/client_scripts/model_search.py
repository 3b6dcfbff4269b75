"""Registry and logged-model search with the real mlflow client: filters, ordering,
pagination and malformed filters. Prints one RESULT JSON line."""

import json

import mlflow
from mlflow import MlflowClient
import pandas as pd

client = MlflowClient()
mlflow.set_experiment("model-search")
out: dict = {}


def error_code(call):
    try:
        call()
        return "accepted"
    except mlflow.exceptions.MlflowException as exc:
        return exc.error_code


# -- registered models and versions -------------------------------------------------
for name, tags in [
    ("alpha-clf", {"team": "growth", "kind": "clf"}),
    ("alpha-reg", {"team": "risk"}),
    ("beta-CLF", {"team": "growth"}),
    ("gamma", {}),
]:
    client.create_registered_model(name, tags=tags)

with mlflow.start_run() as run_a:
    pass
with mlflow.start_run() as run_b:
    pass
for name, run, path in [
    ("alpha-clf", run_a, "model"),
    ("alpha-clf", run_b, "model"),
    ("alpha-clf", run_b, "other"),
    ("gamma", run_a, "model"),
]:
    client.create_model_version(name, f"runs:/{run.info.run_id}/{path}", run_id=run.info.run_id)
client.set_model_version_tag("alpha-clf", "2", "validated", "yes")
client.set_registered_model_tag("gamma", "team", "ops")


def model_names(models):
    return [m.name for m in models]


out["rm_like"] = model_names(client.search_registered_models("name LIKE 'alpha%'"))
out["rm_ilike"] = model_names(client.search_registered_models("name ILIKE '%clf'"))
out["rm_like_case"] = model_names(client.search_registered_models("name LIKE '%CLF'"))
out["rm_ne"] = model_names(client.search_registered_models("name != 'gamma'"))
out["rm_tag"] = model_names(client.search_registered_models("tags.team = 'growth'"))
out["rm_tag_and"] = model_names(client.search_registered_models("tags.team = 'growth' AND name LIKE 'alpha%'"))
out["rm_tag_ne"] = model_names(client.search_registered_models("tags.team != 'growth'"))
out["rm_tag_like"] = model_names(client.search_registered_models("tag.`team` LIKE 'gr%'"))
out["rm_order_desc"] = model_names(client.search_registered_models(order_by=["name DESC"]))
updated = [m.last_updated_timestamp for m in client.search_registered_models(order_by=["last_updated_timestamp DESC"])]
out["rm_order_updated"] = updated == sorted(updated, reverse=True) and len(updated)
created = [m.creation_timestamp for m in client.search_registered_models(order_by=["creation_timestamp ASC"])]
out["rm_order_created"] = created == sorted(created) and len(created)
out["rm_latest"] = sorted(v.version for v in client.search_registered_models("name = 'alpha-clf'")[0].latest_versions)
pages, token = [], None
while True:
    page = client.search_registered_models(max_results=3, page_token=token)
    pages.append(model_names(page))
    token = page.token
    if not token:
        break
out["rm_pages"] = pages
out["rm_injection"] = model_names(client.search_registered_models("name = 'x'' OR ''1''=''1'"))
out["rm_injection2"] = model_names(
    client.search_registered_models("name = 'gamma; DROP TABLE registry_registeredmodel;--'")
)
out["rm_bad_attr"] = error_code(lambda: client.search_registered_models("owner = 'me'"))
out["rm_bad_syntax"] = error_code(lambda: client.search_registered_models("name = "))
out["rm_bad_op"] = error_code(lambda: client.search_registered_models("name > 'a'"))
out["rm_bad_order"] = error_code(lambda: client.search_registered_models(order_by=["tags.team"]))
out["rm_too_many"] = error_code(lambda: client.search_registered_models(max_results=5000))
out["still_there"] = len(client.search_registered_models())


def versions(mvs):
    return [f"{mv.name}/{mv.version}" for mv in mvs]


out["mv_name"] = versions(client.search_model_versions("name = 'alpha-clf'", order_by=["version_number ASC"]))
out["mv_number"] = versions(
    client.search_model_versions("name = 'alpha-clf' AND version_number >= 2", order_by=["version_number DESC"])
)
out["mv_run_in"] = versions(
    client.search_model_versions(f"run_id IN ('{run_a.info.run_id}')", order_by=["name", "version_number"])
)
out["mv_run_ne"] = versions(
    client.search_model_versions(f"run_id != '{run_a.info.run_id}'", order_by=["version_number DESC"])
)
out["mv_source"] = versions(client.search_model_versions("source_path LIKE '%/other'"))
out["mv_tag"] = versions(client.search_model_versions("tags.validated = 'yes'"))
default_order = client.search_model_versions()
out["mv_default_order"] = sorted(versions(default_order))
updated = [mv.last_updated_timestamp for mv in default_order]
out["mv_default_by_updated"] = updated == sorted(updated, reverse=True)
mv_pages, token = [], None
while True:
    page = client.search_model_versions(max_results=3, page_token=token, order_by=["name", "version_number ASC"])
    mv_pages.append(versions(page))
    token = page.token
    if not token:
        break
out["mv_pages"] = mv_pages
out["mv_bad_attr"] = error_code(lambda: client.search_model_versions("stage = 'Production'"))
out["mv_bad_in"] = error_code(lambda: client.search_model_versions("source_path IN ('a')"))
out["mv_bad_number"] = error_code(lambda: client.search_model_versions("version_number = 1.5"))
out["mv_injection"] = versions(client.search_model_versions("name = 'alpha-clf'' --'"))

# -- logged models ------------------------------------------------------------------
exp_id = mlflow.get_experiment_by_name("model-search").experiment_id
eval_ds = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2], "y": [0, 1]}), name="eval")
test_ds = mlflow.data.from_pandas(pd.DataFrame({"x": [3, 4, 5], "y": [1, 0, 1]}), name="test")
ids = {}
with mlflow.start_run() as run:
    for name, acc, lr, model_type in [
        ("m-low", 0.5, "0.1", "sklearn"),
        ("m-mid", 0.7, "0.01", "sklearn"),
        ("m-high", 0.9, "0.001", "torch"),
    ]:
        model = mlflow.initialize_logged_model(
            name=name,
            source_run_id=run.info.run_id,
            params={"lr": lr},
            tags={"family": name[2:]},
            model_type=model_type,
        )
        ids[name] = model.model_id
        mlflow.log_metric("acc", acc, model_id=model.model_id, dataset=eval_ds)
        mlflow.log_metric("acc", 1 - acc, model_id=model.model_id, dataset=test_ds)
    mlflow.finalize_logged_model(ids["m-high"], "READY")
    mlflow.finalize_logged_model(ids["m-mid"], "READY")


def lm_names(models):
    return [m.name for m in models]


def lm(filter_string=None, **kwargs):
    return lm_names(
        mlflow.search_logged_models(
            experiment_ids=[exp_id], filter_string=filter_string, output_format="list", **kwargs
        )
    )


out["lm_metric"] = lm("metrics.acc > 0.6", order_by=[{"field_name": "name"}])
out["lm_metric_on_eval"] = lm(
    "metrics.acc > 0.6", datasets=[{"dataset_name": "eval"}], order_by=[{"field_name": "name"}]
)
out["lm_metric_on_test"] = lm(
    "metrics.acc > 0.4", datasets=[{"dataset_name": "test", "dataset_digest": test_ds.digest}]
)
out["lm_datasets_only"] = len(lm(datasets=[{"dataset_name": "test"}]))
out["lm_param"] = lm("params.lr = '0.01'")
out["lm_tag"] = lm("tags.family LIKE 'h%'")
out["lm_attrs"] = lm("model_type = 'sklearn' AND status = 'READY'")
out["lm_name_in"] = lm("name IN ('m-low', 'm-high')", order_by=[{"field_name": "name", "ascending": False}])
out["lm_id"] = lm(f"model_id = '{ids['m-mid']}'")
out["lm_time"] = len(lm("creation_timestamp > 0 AND last_updated_timestamp > 0"))
out["lm_order_metric_eval"] = lm(order_by=[{"field_name": "metrics.acc", "ascending": False, "dataset_name": "eval"}])
out["lm_order_metric_test"] = lm(order_by=[{"field_name": "metrics.acc", "ascending": False, "dataset_name": "test"}])
out["lm_metrics_shape"] = sorted((m.dataset_name, m.value) for m in mlflow.get_logged_model(ids["m-high"]).metrics)
lm_pages, token = [], None
while True:
    page = client.search_logged_models([exp_id], max_results=2, page_token=token, order_by=[{"field_name": "name"}])
    lm_pages.append(lm_names(page))
    token = page.token
    if not token:
        break
out["lm_pages"] = lm_pages
out["lm_injection"] = lm("name = 'm-low'' OR 1=1 --'")
out["lm_bad_attr"] = error_code(lambda: lm("colour = 'red'"))
out["lm_bad_op"] = error_code(lambda: lm("metrics.acc LIKE '0.5'"))
out["lm_bad_syntax"] = error_code(lambda: lm("metrics.acc >> 1"))
out["lm_bad_order"] = error_code(lambda: lm(order_by=[{"field_name": "params.lr"}]))
print("RESULT " + json.dumps(out))
