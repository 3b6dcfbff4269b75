"""Every job owns a run: params, what the job logs, system metrics and saved files
land in it, and the run ends with the job."""

import pytest

pytest.importorskip("experiments.services")

from experiments.artifacts import get_store, run_root  # noqa: E402
from experiments.models import Metric, Param, Run  # noqa: E402
from jobs.models import JobStatus  # noqa: E402
from tests.jobs.conftest import execute  # noqa: E402

TRAIN = """
import time, mlflow
mlflow.log_param("optimizer", "sgd")
for step in range(3):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
open("model.pkl", "wb").write(b"weights")
mlflow.log_artifact("model.pkl", "model")
time.sleep(2.5)
"""


def test_the_job_run_holds_params_metrics_system_metrics_and_the_model(submit):
    job = execute(submit(TRAIN, params={"lr": "0.1"}, experiment_name="churn"))
    assert job.status == JobStatus.SUCCEEDED
    run = Run.objects.select_related("experiment").get(pk=job.run_id)
    assert run.experiment.name == "churn" and run.status == "FINISHED" and run.end_time
    params = dict(Param.objects.filter(run=run).values_list("key", "value"))
    assert params["lr"] == "0.1" and params["optimizer"] == "sgd"
    losses = list(Metric.objects.filter(run=run, key="loss").order_by("step").values_list("value", flat=True))
    assert losses == [1.0, 0.5, 1 / 3]
    assert Metric.objects.filter(run=run, key="system/cpu_utilization_percentage").exists()
    assert Metric.objects.filter(run=run, key="system/system_memory_usage_megabytes").exists()
    assert [f.path for f in get_store().list(run_root(run), "model")] == ["model/model.pkl"]


def test_a_failed_job_fails_its_run(submit):
    job = execute(submit("raise SystemExit(2)"))
    assert Run.objects.get(pk=job.run_id).status == "FAILED"
