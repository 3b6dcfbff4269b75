import pytest

from experiments import services as exp_services
from experiments.artifacts import model_local_dir
from mlplatform.errors import NotFound, ValidationFailed
from registry import selectors, services
from tests.factories import UserFactory, make_project


@pytest.fixture
def trained(project, user):
    experiment = exp_services.experiment_get_or_create(project=project, name="exp", user=user)
    run = exp_services.run_create(
        experiment=experiment, user=user, tags={"mlflow.source.git.commit": "abc123", "mlflow.source.name": "train.py"}
    )
    exp_services.run_log_batch(run=run, params={"C": "0.5"})
    exp_services.run_log_inputs(
        run=run,
        datasets=[
            {
                "dataset": {"name": "iris", "digest": "d1g3st", "source_type": "local", "source": "{}"},
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
            }
        ],
    )
    model = exp_services.logged_model_create(experiment=experiment, user=user, name="model", source_run=run)
    return run, model


def test_version_provenance_and_alias(project, user, trained):
    run, logged = trained
    rm = services.registered_model_create(project=project, name="iris-clf", user=user)
    source = f"models:/{logged.pk}"
    mv = services.model_version_create(registered_model=rm, source=source, user=user, model_id=logged.pk)
    assert mv.version == 1 and mv.run == run and mv.logged_model == logged
    assert mv.code_version == "abc123" and mv.params == {"C": "0.5"}
    assert mv.dataset_digests == [{"name": "iris", "digest": "d1g3st", "context": "training"}]
    services.alias_set(registered_model=rm, alias="champion", version=mv, user=user)
    got = selectors.model_version_get_by_alias(user=user, name=f"{project.slug}/iris-clf", alias="champion")
    assert got == mv
    assert selectors.model_version_local_dir(version=mv) == model_local_dir(logged)
    mv2 = services.model_version_create(registered_model=rm, source=f"runs:/{run.pk}/model", user=user)
    assert mv2.version == 2


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "/root/.ssh",
        "../../",
        "http://169.254.169.254/latest",
        "runs:/{run}/../../etc",
        "s3://x/y",
    ],
)
def test_sources_outside_the_store_are_refused(project, user, trained, source):
    run, _ = trained
    rm = services.registered_model_create(project=project, name="m", user=user)
    with pytest.raises(ValidationFailed):
        services.model_version_create(registered_model=rm, source=source.format(run=run.pk), user=user)


def test_another_projects_run_or_model_is_refused(user, trained):
    run, logged = trained
    stranger = UserFactory()
    other = make_project(owner=stranger)
    rm = services.registered_model_create(project=other, name="m", user=stranger)
    for source in (f"runs:/{run.pk}/model", f"models:/{logged.pk}"):
        with pytest.raises(ValidationFailed):
            services.model_version_create(registered_model=rm, source=source, user=stranger)
    with pytest.raises(NotFound):
        selectors.registered_model_get(user=stranger, name=f"{run.experiment.project.slug}/m")
