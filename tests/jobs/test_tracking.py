"""Every job owns a run, and the job logs to it with the real MLflow client: the
executor hands it the run, the tracking URI and a token scoped to the job's project,
revoked when the job ends. Params, system metrics and the final status come from the
platform."""

from datetime import timedelta

import pytest

pytest.importorskip("experiments.services")

from experiments.artifacts import get_store, model_root, run_root  # noqa: E402
from experiments.models import LoggedModel, Metric, Param, Run  # noqa: E402
from jobs.models import JobLogLine, JobMetric, JobStatus  # noqa: E402
from jobs.services.jobs import TOKEN_MARGIN  # noqa: E402
from mlplatform import services as core_services  # noqa: E402
from mlplatform.models import ApiToken  # noqa: E402
from tests.jobs.conftest import assert_job_token_refused, execute  # noqa: E402

TRAIN = """
import time, mlflow
mlflow.log_param("optimizer", "sgd")
for step in range(3):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
open("model.pkl", "wb").write(b"weights")
mlflow.log_artifact("model.pkl", "model")
time.sleep(2.5)
"""

AUTOLOG = """
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

mlflow.autolog()
X, y = load_iris(return_X_y=True)
LogisticRegression(C=0.5, max_iter=200).fit(X, y)
"""

TOKEN_PROBE = """
import os, urllib.request
request = urllib.request.Request(
    os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/get?run_id=" + os.environ["MLFLOW_RUN_ID"],
    headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]},
)
print("during the job", urllib.request.urlopen(request).status)
print("experiment", os.environ["MLFLOW_EXPERIMENT_ID"])
open("token", "w").write(os.environ["MLFLOW_TRACKING_TOKEN"])
"""


def lines_of(job):
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


def test_the_job_run_holds_params_metrics_system_metrics_and_artifacts(submit, tracking_server):
    job = execute(submit(TRAIN, params={"lr": "0.1"}, experiment_name="churn"))
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    run = Run.objects.select_related("experiment").get(pk=job.run_id)
    assert run.experiment.name == "churn" and run.status == "FINISHED" and run.end_time
    params = dict(Param.objects.filter(run=run).values_list("key", "value"))
    assert params["lr"] == "0.1" and params["optimizer"] == "sgd"
    losses = list(Metric.objects.filter(run=run, key="loss").order_by("step").values_list("value", flat=True))
    assert losses == [1.0, 0.5, 1 / 3]
    assert Metric.objects.filter(run=run, key="system/cpu_utilization_percentage").exists()
    assert Metric.objects.filter(run=run, key="system/system_memory_usage_megabytes").exists()
    assert [f.path for f in get_store().list(run_root(run), "model")] == ["model/model.pkl"]
    # The job's page follows what the client logged, and links the run itself: the
    # client's "View run at <MLflow UI>" lines are not printed.
    assert JobMetric.objects.filter(job=job, key="loss").count() == 3
    assert not [line for line in lines_of(job) if "View run" in line]


def test_autolog_with_scikit_learn_logs_params_metrics_and_the_model_into_the_job_run(submit, tracking_server):
    job = execute(submit(AUTOLOG, resources={"memory": "2g"}))
    assert job.status == JobStatus.SUCCEEDED, "\n".join(lines_of(job))
    # Autolog starts "its" run from MLFLOW_RUN_ID: the job's.
    assert any(f"autologging run with ID '{job.run_id}'" in line for line in lines_of(job))
    run = Run.objects.get(pk=job.run_id)
    params = dict(Param.objects.filter(run=run).values_list("key", "value"))
    assert params["C"] == "0.5" and params["max_iter"] == "200"
    assert Metric.objects.filter(run=run, key="training_accuracy_score").exists()
    model = LoggedModel.objects.get(source_run=run)
    assert "MLmodel" in [f.path for f in get_store().list(model_root(model), "")]


def test_a_failed_job_fails_its_run_whatever_its_client_said_at_exit(submit, tracking_server):
    job = execute(submit("import mlflow\nmlflow.log_metric('x', 1)\nraise SystemExit(2)"))
    assert job.status == JobStatus.FAILED
    assert Run.objects.get(pk=job.run_id).status == "FAILED"


def test_the_job_token_reaches_its_run_during_the_job_and_is_revoked_after(submit, tracking_server, data_dir):
    job = execute(submit(TOKEN_PROBE))
    assert job.status == JobStatus.SUCCEEDED, lines_of(job)
    run = Run.objects.get(pk=job.run_id)
    assert lines_of(job) == ["during the job 200", f"experiment {run.experiment_id}"]
    token = ApiToken.objects.get(pk=job.token_id)
    assert token.project_id == job.project_id and token.revoked_at is not None
    # It would have died by itself shortly after the job's time limit.
    lifetime = token.expires_at - token.created_at - timedelta(seconds=job.timeout_seconds)
    assert abs(lifetime - TOKEN_MARGIN) < timedelta(seconds=5)
    assert_job_token_refused(tracking_server, data_dir, job)


def test_a_revoked_token_is_refused_at_once_although_checks_are_cached(client, user, token_for):
    raw = token_for(user)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/2.0/mlflow/experiments/search", **headers).status_code == 200
    token = ApiToken.objects.get(user=user)
    core_services.api_token_revoke(token_id=token.pk, actor=user)
    assert client.get("/api/2.0/mlflow/experiments/search", **headers).status_code == 401


def test_an_expired_token_is_refused_although_checks_are_cached(client, user, token_for, monkeypatch):
    from django.utils import timezone

    raw = token_for(user, expires_in_days=None, expires_at=timezone.now() + timedelta(hours=1))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/2.0/mlflow/experiments/search", **headers).status_code == 200
    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert client.get("/api/2.0/mlflow/experiments/search", **headers).status_code == 401


def test_the_random_forest_template_logs_a_tree_model_and_its_training_data(submit, tracking_server):
    from experiments.models import DatasetInput
    from frontend.views.jobs import JOB_TEMPLATES

    job = execute(submit(JOB_TEMPLATES["random-forest"][1], resources={"memory": "2g"}))
    assert job.status == JobStatus.SUCCEEDED, "\n".join(lines_of(job))
    run = Run.objects.get(pk=job.run_id)
    model = LoggedModel.objects.get(source_run=run)
    assert "model.skops" in [f.path.rsplit("/", 1)[-1] for f in get_store().list(model_root(model), "")]
    assert DatasetInput.objects.filter(run=run, context="training").exists()
    assert "train.csv" in [f.path for f in get_store().list(run_root(run), "")]


TREE_WITHOUT_TRUST = """
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

X, y = load_iris(return_X_y=True)
mlflow.sklearn.log_model(DecisionTreeClassifier().fit(X, y), name="model", pip_requirements=["scikit-learn"])
"""


def test_the_job_page_recognises_the_skops_trust_error_and_links_the_fix(submit, tracking_server, scientist):
    from django.test import Client

    job = execute(submit(TREE_WITHOUT_TRUST, resources={"memory": "2g"}))
    assert job.status == JobStatus.FAILED
    client = Client()
    client.force_login(scientist)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    aside = html[html.index('<aside class="card hint"') :].split("</aside>")[0]
    opening_tag = aside.split(">")[0]
    assert "skops_trusted_types" in opening_tag and " hidden" not in opening_tag  # shown
    assert "?template=random-forest" in aside
