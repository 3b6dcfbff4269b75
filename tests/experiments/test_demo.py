"""The demo data of `make run`: made by the real mlflow client against the real app."""

import pytest

from experiments import demo
from experiments.artifacts import run_local_dir
from experiments.models import Experiment, Run, RunStatus
from registry.models import ModelVersion
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_seed_logs_runs_and_two_model_versions_once():
    admin = UserFactory(username="demo-admin")
    project = make_project(owner=admin, slug="demo-seed")

    result = demo.seed(admin, project)

    experiment = Experiment.objects.get(project=project, name=demo.DEMO_EXPERIMENT)
    runs = Run.objects.filter(experiment=experiment)
    assert runs.count() >= 25
    assert runs.filter(parent_run_id=result["parent_run"]).count() == 18
    assert runs.get(pk=result["failed_run"]).status == RunStatus.FAILED
    versions = list(ModelVersion.objects.filter(registered_model__project=project).order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].run_id == result["best_run"]
    assert {a.alias for a in versions[1].aliases.all()} == {"champion"}
    assert versions[1].dataset_digests and versions[1].params["model"] == "gradient_boosting"
    best_files = {
        p.relative_to(run_local_dir(versions[1].run)).as_posix() for p in run_local_dir(versions[1].run).rglob("*")
    }
    assert {"plots/val_loss.png", "importance.csv", "config.json"} <= best_files
    assert not admin.api_tokens.filter(revoked_at__isnull=True).exists()

    assert demo.seed(admin, project) is None  # idempotent
    assert Run.objects.filter(experiment=experiment).count() == runs.count()
